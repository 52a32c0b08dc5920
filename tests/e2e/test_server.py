"""End to end: the real uvicorn server on a loopback port, real HTTP, real SQLite/FAISS/JPEGs."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e


def files(*seeds, field="images"):
    return [(field, (f"{s}.jpg", make_jpeg(s), "image/jpeg")) for s in seeds]


def test_enrol_recognise_delete_unknown_and_restart(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir, ["--threshold", "0.995"]) as server, server.client() as http:
        assert http.get("/readyz").json()["status"] == "ready"
        enrolled = http.post("/v1/skus/milk/images", files=files(1, 2), data={"name": "Milk"})
        assert enrolled.status_code == 201
        http.post("/v1/skus/juice/images", files=files(3))
        assert (
            http.post("/v1/recognize", files=files(1, field="image")).json()["sku"] == "milk"
        )  # the very next request
        assert http.delete("/v1/skus/milk").status_code == 204
        answer = http.post("/v1/recognize", files=files(1, field="image")).json()
        assert answer["decision"] == "unknown" and answer["sku"] is None
    # restart: everything is still there
    with Server(data, tiny_model_dir, ["--threshold", "0.995"]) as server, server.client() as http:
        assert http.post("/v1/recognize", files=files(3, field="image")).json()["sku"] == "juice"
        assert http.get("/v1/skus/milk").status_code == 404
        assert http.get("/readyz").json()["reference_images"] == 1


def test_model_mismatch_409_then_reindex(tmp_path, tiny_model_dir, other_model_dir):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir) as server, server.client() as http:
        http.post("/v1/skus/milk/images", files=files(1))
    with Server(data, other_model_dir) as server, server.client() as http:
        r = http.post("/v1/recognize", files=files(1, field="image"))
        assert r.status_code == 409 and "reindex" in r.json()["error"]["message"]
    cli = [sys.executable, "-m", "service.cli", "reindex", "--data-dir", str(data), "--model", str(other_model_dir)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Server(data, other_model_dir) as server, server.client() as http:
        assert http.post("/v1/recognize", files=files(1, field="image")).json()["sku"] == "milk"


def test_bulk_enrol_from_folder_then_serve(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    for sku, seeds in {"apple": [1, 2], "pear": [3]}.items():
        (folder / sku).mkdir(parents=True)
        for s in seeds:
            (folder / sku / f"{s}.jpg").write_bytes(make_jpeg(s))
    (folder / "pear" / "notes.txt").write_text("not a photo")
    data = tmp_path / "data"
    cli = [
        sys.executable,
        "-m",
        "service.cli",
        "enroll",
        str(folder),
        "--data-dir",
        str(data),
        "--model",
        str(tiny_model_dir),
    ]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "enrolled 3 images of 2 SKUs" in done.stdout and "notes.txt" in done.stdout
    with Server(data, tiny_model_dir) as server, server.client() as http:
        assert http.get("/v1/skus").json()["total"] == 2
        assert http.post("/v1/recognize", files=files(3, field="image")).json()["sku"] == "pear"


@pytest.mark.grocery
def test_grocery_enrol_some_photos_recognise_others(tmp_path, grocery, tiny_model_dir):
    """Real in-store photos: enrol train photos of a few SKUs, recognise their val photos.

    With the shipped (trained) model when there is one, else only the plumbing is checked.
    """
    from embedder.artifact import ModelNotFound, default_model_dir, load_artifact

    try:
        model_dir = load_artifact(default_model_dir()).path
        trained = True
    except ModelNotFound:
        model_dir, trained = tiny_model_dir, False
    skus = ["Banana", "Granny-Smith", "Oatly-Natural-Oatghurt", "Red-Beet", "Watermelon", "Bravo-Orange-Juice"]
    data = tmp_path / "data"
    with Server(data, model_dir) as server, server.client() as http:
        for sku in skus:
            photos = sorted((grocery / "train" / sku).glob("*.jpg"))[:8]
            upload = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
            assert http.post(f"/v1/skus/{sku}/images", files=upload).status_code == 201
        right = total = 0
        for sku in skus:
            for photo in sorted((grocery / "val" / sku).glob("*.jpg")):
                answer = http.post("/v1/recognize", content=photo.read_bytes(), headers={"Content-Type": "image/jpeg"})
                assert answer.status_code == 200
                right += answer.json()["matches"][0]["sku"] == sku
                total += 1
    assert total >= 20
    if trained:
        assert right / total >= 0.8, f"top-1 {right}/{total} on real val photos"


def test_keys_enforced_and_never_logged(tmp_path, tiny_model_dir):
    keys = tmp_path / "keys"
    keys.write_text("checkout lane-secret-000000000001\nmerchandiser merch-secret-00000000002\n")
    with (
        Server(
            tmp_path / "data", tiny_model_dir, ["--api-keys", str(keys)], env={"SKULENS_LOG_LEVEL": "debug"}
        ) as server,
        server.client() as http,
    ):
        assert http.post("/v1/recognize", files=files(1, field="image")).status_code == 401
        assert (
            http.post(
                "/v1/skus/a/images", files=files(1), headers={"X-API-Key": "lane-secret-000000000001"}
            ).status_code
            == 403
        )
        assert (
            http.post(
                "/v1/skus/a/images", files=files(1), headers={"Authorization": "Bearer merch-secret-00000000002"}
            ).status_code
            == 201
        )
        assert (
            http.post(
                "/v1/recognize", files=files(1, field="image"), headers={"X-API-Key": "wrong-secret-0000000003"}
            ).status_code
            == 401
        )
    log = server.log_path.read_text(errors="replace")
    assert "ready:" in log  # the log was written
    for secret in ("lane-secret", "merch-secret", "wrong-secret"):
        assert secret not in log
    assert make_jpeg(1)[100:140].hex() not in log.replace(" ", "")


def calibrated_copy(model_dir: Path, out: Path, calibration: dict) -> Path:
    """A copy of the model at ``model_dir`` whose card carries ``calibration`` (threshold, beta or gamma)."""
    import json
    import shutil

    shutil.copytree(model_dir, out)
    card = json.loads((out / "model.json").read_text())
    card["extra"]["calibration"] = calibration
    (out / "model.json").write_text(json.dumps(card))
    return out


def recognise_milk_beside_juice(http) -> dict:
    """Enrol milk (photos 1, 2) and juice (photo 3), then recognise photo 1: the answer's JSON."""
    http.post("/v1/skus/milk/images", files=files(1, 2))
    http.post("/v1/skus/juice/images", files=files(3))
    return http.post("/v1/recognize", files=files(1, field="image")).json()


def test_the_answer_is_decided_on_the_lookalike_adjusted_score(tmp_path, tiny_model_dir, tiny_embedder):
    """A model calibrated with a lookalike beta: the served score is the similarity less beta × the
    cosine between the answer's SKU centroid and the nearest other SKU's, and the decision uses it."""
    import numpy as np

    from embedder.preprocess import load_image
    from gallery.lookalike import label_lookalikes

    model = calibrated_copy(tiny_model_dir, tmp_path / "model", {"threshold": 0.5, "lookalike": {"beta": 0.5}})
    with Server(tmp_path / "data", model, ["--threshold", "-1"]) as server, server.client() as http:
        answer = recognise_milk_beside_juice(http)
    vectors = tiny_embedder.embed(np.stack([load_image(make_jpeg(s), tiny_embedder.input_size) for s in (1, 2, 3)]))
    lookalike = label_lookalikes(vectors, np.array([0, 0, 1]), 2)[0]
    assert answer["sku"] == "milk" and answer["decision"] == "known"
    assert answer["similarity"] == pytest.approx(answer["matches"][0]["score"], abs=1e-6)
    assert answer["score"] == pytest.approx(answer["similarity"] - 0.5 * lookalike, abs=1e-4)


def test_the_answer_is_decided_on_the_runner_up_adjusted_score(tmp_path, tiny_model_dir, tiny_embedder):
    """A model calibrated with a runner-up gamma: the served score is the similarity less gamma × the second
    SKU's similarity, also when the server shows one match (SKULENS_TOP_K=1)."""
    model = calibrated_copy(tiny_model_dir, tmp_path / "model", {"threshold": 0.5, "runner_up": {"gamma": 0.4}})
    with Server(tmp_path / "data", model, ["--threshold", "-1"]) as server, server.client() as http:
        full = recognise_milk_beside_juice(http)
    with (
        Server(tmp_path / "data", model, ["--threshold", "-1"], env={"SKULENS_TOP_K": "1"}) as server,
        server.client() as http,
    ):
        one = http.post("/v1/recognize", files=files(1, field="image")).json()
    assert full["sku"] == "milk" and [m["sku"] for m in full["matches"]] == ["milk", "juice"]
    assert full["score"] == pytest.approx(full["similarity"] - 0.4 * full["matches"][1]["score"], abs=1e-5)
    assert len(one["matches"]) == 1 and one["score"] == pytest.approx(full["score"], abs=1e-6)


def test_serving_the_shipped_int8_float_head_model_by_name(tmp_path):
    """`skulens serve --model int8_float_head`: the mixed-precision file shipped beside the default, with
    its own version and calibrated threshold, enrols and recognises over HTTP."""
    from embedder.artifact import load_artifact, shipped_model_dir

    expected = load_artifact(shipped_model_dir("int8_float_head"))
    with Server(tmp_path / "data", Path("int8_float_head")) as server, server.client() as http:
        info = http.get("/readyz").json()
        assert http.post("/v1/skus/milk/images", files=files(1, 2)).status_code == 201
        http.post("/v1/skus/juice/images", files=files(3))
        answer = http.post("/v1/recognize", files=files(2, field="image")).json()
    assert answer["model_version"] == expected.version != load_artifact(shipped_model_dir("float32")).version
    assert answer["threshold"] == pytest.approx(expected.threshold)
    assert answer["matches"][0]["sku"] == "milk" and answer["similarity"] > 0.99
    runner_up = answer["matches"][1]["score"]
    assert answer["score"] == pytest.approx(answer["similarity"] - expected.runner_up_gamma * runner_up, abs=1e-5), info


@pytest.mark.parametrize("name", ["ensemble", "ensemble_int8_float_head"])
def test_serving_the_ensemble_model_from_the_repository(tmp_path, name):
    """`skulens serve --model models/ensemble`: the default model joined with a MobileNetV2 (one LiteRT file,
    kept in the repository beside the package, not installed with it; float32 and mixed precision), with its own
    threshold and γ, enrols and recognises over HTTP; its card names both members."""
    from embedder.artifact import load_artifact, shipped_model_dir

    folder = Path(__file__).resolve().parents[2] / "models" / name
    expected, default = load_artifact(folder), load_artifact(shipped_model_dir("float32"))
    assert [m["backbone"] for m in expected.extra["members"]] == [default.backbone, "mobilenet_v2"]
    assert expected.embedding_dim == 2 * default.embedding_dim
    assert expected.runner_up_gamma > 0 and expected.lookalike_beta == 0  # calibrated on the runner-up score
    with Server(tmp_path / "data", folder) as server, server.client() as http:
        assert http.post("/v1/skus/milk/images", files=files(1, 2)).status_code == 201
        http.post("/v1/skus/juice/images", files=files(3))
        answer = http.post("/v1/recognize", files=files(2, field="image")).json()
    assert answer["model_version"] == expected.version != default.version
    assert answer["threshold"] == pytest.approx(expected.threshold) != pytest.approx(default.threshold)
    assert answer["matches"][0]["sku"] == "milk" and answer["similarity"] > 0.99
    runner_up = answer["matches"][1]["score"]
    assert answer["score"] == pytest.approx(answer["similarity"] - expected.runner_up_gamma * runner_up, abs=1e-5)
