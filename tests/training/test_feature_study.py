"""The served-feature study (training/feature_study.py): its variants by hand, and its feature model
against the embedder it is cut from."""

from __future__ import annotations

import numpy as np
import pytest

from training.feature_study import variant


def raw_rows(seed: int = 0) -> np.ndarray:
    """6 photos: a 5-wide pooled feature, then a 3-wide projection and its neck output."""
    return np.random.default_rng(seed).normal(size=(6, 11)).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_each_variant_is_its_slice_made_unit_length():
    raw = raw_rows()
    pooled, pre, post = raw[:, :5], raw[:, 5:8], raw[:, 8:]
    np.testing.assert_allclose(variant(raw, 3, "pooled"), unit(pooled), rtol=1e-6)
    np.testing.assert_allclose(variant(raw, 3, "pre-neck"), unit(pre), rtol=1e-6)
    np.testing.assert_allclose(variant(raw, 3, "post-neck"), unit(post), rtol=1e-6)
    joined = np.concatenate([unit(pre), unit(post)], axis=1) / np.sqrt(2)  # each half 1/sqrt(2) long
    np.testing.assert_allclose(variant(raw, 3, "pre + post"), joined, rtol=1e-5)


def test_the_pooled_feature_joins_the_served_one_at_its_weight():
    raw = raw_rows(1)
    pooled, post = raw[:, :5], raw[:, 8:]
    expected = unit(np.concatenate([0.5 * unit(pooled), unit(post)], axis=1))
    np.testing.assert_allclose(variant(raw, 3, "pooled@0.5"), expected, rtol=1e-5)


@pytest.mark.parametrize("name, match", [("neck", "unknown feature 'neck'"), ("pooled@-1", "'pooled@-1'")])
def test_unknown_features_and_weights_are_refused(name, match):
    with pytest.raises(ValueError, match=match):
        variant(raw_rows(), 3, name)


def test_the_feature_model_serves_what_the_embedder_serves_and_what_it_is_made_of():
    from embedder.backbones import pooled_feature_dim
    from embedder.model import build_embedding_model, build_head
    from training.feature_study import feature_model
    from training.train import backbone_layer

    width = pooled_feature_dim("mobilenet_v3_small", "avg")
    head = build_head(width, 8, seed=0, neck=True)
    model = build_embedding_model("mobilenet_v3_small", weights=None, embedding_dim=8, input_size=32, head=head)
    rng = np.random.default_rng(0)
    # a neck that is not the identity (a fresh one is), so the pre- and post-neck slices differ
    head.get_layer("neck").set_weights([rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.uniform(0.5, 2, 8)])
    x = rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    raw = np.asarray(feature_model(model)(x))
    assert raw.shape == (3, width + 8 + 8)
    pooled = np.asarray(backbone_layer(model)(x))
    np.testing.assert_allclose(raw[:, :width], pooled, atol=1e-4)
    np.testing.assert_allclose(raw[:, width : width + 8], np.asarray(head.get_layer("projection")(pooled)), atol=1e-4)
    np.testing.assert_allclose(variant(raw, 8, "post-neck"), np.asarray(model(x)), atol=1e-5)
    assert not np.allclose(variant(raw, 8, "pre-neck"), variant(raw, 8, "post-neck"), atol=1e-3)


def test_a_model_without_a_neck_is_refused():
    from embedder.model import build_embedding_model
    from training.feature_study import feature_model

    model = build_embedding_model("mobilenet_v3_small", weights=None, embedding_dim=8, input_size=32)
    with pytest.raises(ValueError, match="has no neck"):
        feature_model(model)
