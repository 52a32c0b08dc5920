"""An app built around a given embedder (benchmarks, tests) decides on the open-set score it is given, as
`skulens serve` decides on its model's: bench/variant_server.py passes the model's weights through."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_jpeg


def files(*seeds: int, field: str = "images") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (f"{s}.jpg", make_jpeg(s), "image/jpeg")) for s in seeds]


@pytest.mark.parametrize("gamma", [0.0, 0.4])
def test_the_given_runner_up_weight_is_the_one_decided_on(tmp_path, tiny_model_dir, tiny_embedder, gamma):
    settings = Settings(data_dir=tmp_path / "data", model=tiny_model_dir, threshold=-1.0)
    with TestClient(create_app(settings, embedder=tiny_embedder, runner_up_gamma=gamma)) as http:
        assert http.post("/v1/skus/milk/images", files=files(1, 2)).status_code == 201
        assert http.post("/v1/skus/juice/images", files=files(3)).status_code == 201
        answer = http.post("/v1/recognize", files=files(1, field="image")).json()
        info = http.get("/v1/admin/info").json()
        stored = http.put("/v1/admin/threshold", json={"threshold": 0.3}).json()
    assert info["decision_score"] == stored["decision_score"] == ("runner-up-0.4" if gamma else "similarity")
    runner_up = answer["matches"][1]["score"]
    assert runner_up > 0.1  # the check below tells the two scores apart
    assert answer["score"] == pytest.approx(answer["similarity"] - gamma * runner_up, abs=1e-5)
