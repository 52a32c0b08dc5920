"""Several embedders joined into one model (training/ensemble_model.py): its vectors are unit length and
their inner products the members' mean cosine similarity; what cannot be joined is refused."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from training.ensemble_model import ensemble_meta, join_embedders


def tiny(input_size: int, dim: int, seed: int) -> keras.Model:
    from embedder.model import build_embedding_model

    return build_embedding_model(
        "mobilenet_v3_small", weights=None, embedding_dim=dim, input_size=input_size, seed=seed
    )


def test_the_joined_similarity_is_the_members_mean_cosine():
    a, b = tiny(32, 8, 0), tiny(32, 6, 1)
    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    va, vb = np.asarray(a(x)), np.asarray(b(x))
    names = a.name, b.name
    joined = np.asarray(join_embedders([a, b])(x))
    assert (a.name, b.name) == names  # the caller's models are not renamed
    np.testing.assert_allclose(np.asarray(join_embedders([a, b])(x)), joined, atol=1e-6)  # joined again: the same
    assert joined.shape == (5, 14)
    np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, atol=1e-5)
    for i in range(5):
        for j in range(5):
            cos_a = va[i] @ va[j] / (np.linalg.norm(va[i]) * np.linalg.norm(va[j]))
            cos_b = vb[i] @ vb[j] / (np.linalg.norm(vb[i]) * np.linalg.norm(vb[j]))
            assert joined[i] @ joined[j] == pytest.approx((cos_a + cos_b) / 2, abs=1e-5)


def test_members_that_cannot_be_joined_are_refused():
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        join_embedders([tiny(32, 8, 0)])
    with pytest.raises(ValueError, match=r"different inputs: \[\(32, 32, 3\), \(64, 64, 3\)\]"):
        join_embedders([tiny(32, 8, 0), tiny(64, 8, 1)])


def meta(backbone: str, dim: int, held_out: list[str], size: int = 256) -> dict:
    return {
        "backbone": backbone,
        "input_size": size,
        "embedding_dim": dim,
        "weights_origin": f"{backbone} weights",
        "trained": True,
        "val_recall_at_1": 0.9,
        "held_out_skus": held_out,
    }


def test_the_ensembles_card_sums_dims_and_keeps_only_skus_no_member_trained_on():
    joined = ensemble_meta([meta("v3", 512, ["A", "B"]), meta("v2", 256, ["B", "C"])], ["runs/v3", "runs/v2"])
    assert joined["backbone"] == "v3+v2" and joined["embedding_dim"] == 768 and joined["input_size"] == 256
    assert joined["held_out_skus"] == ["B"]
    assert [m["path"] for m in joined["members"]] == ["runs/v3", "runs/v2"]
    json.dumps(joined)  # written as training_meta.json
    with pytest.raises(ValueError, match=r"different sizes: \[224, 256\]"):
        ensemble_meta([meta("v3", 512, []), meta("v2", 512, [], size=224)], ["a", "b"])
    incomplete = {k: v for k, v in meta("v2", 512, []).items() if k != "weights_origin"}
    with pytest.raises(ValueError, match=r"training_meta.json of 'runs/v2' lacks \['weights_origin'\]"):
        ensemble_meta([meta("v3", 512, []), incomplete], ["runs/v3", "runs/v2"])


def test_the_command_names_a_folder_without_a_model(tmp_path):
    from training.ensemble_model import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no model.keras and training_meta.json in .*empty"):
        main([str(tmp_path / "empty"), str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
