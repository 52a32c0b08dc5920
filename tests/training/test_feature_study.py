"""The served-feature study (training/feature_study.py): its variants by hand, and its feature model
against the embedder it is cut from."""

from __future__ import annotations

import numpy as np
import pytest

from training.feature_study import VARIANTS, variant


def raw_rows(seed: int = 0) -> np.ndarray:
    """6 photos: a 5-wide pooled feature, then a 3-wide projection and its neck output."""
    return np.random.default_rng(seed).normal(size=(6, 11)).astype(np.float32)


def test_each_variant_is_its_slice_made_unit_length():
    raw = raw_rows()
    by_hand = {"pooled": raw[:, :5], "pre-neck": raw[:, 5:8], "post-neck": raw[:, 8:]}
    for name, part in by_hand.items():
        expected = part / np.linalg.norm(part, axis=1, keepdims=True)
        np.testing.assert_allclose(variant(raw, 3, name), expected, rtol=1e-6)
    joined = variant(raw, 3, "pre + post")
    assert joined.shape == (6, 6) and np.allclose(np.linalg.norm(joined, axis=1), 1.0)
    # joined unit vectors weigh equally: each half is 1/sqrt(2) long
    assert np.allclose(np.linalg.norm(joined[:, :3], axis=1), np.sqrt(0.5))


def test_the_pooled_feature_joins_the_served_one_at_its_weight():
    raw = raw_rows(1)
    out = variant(raw, 3, "pooled@0.5")
    assert out.shape == (6, 8)
    halves = np.linalg.norm(out[:, :5], axis=1) / np.linalg.norm(out[:, 5:], axis=1)
    assert np.allclose(halves, 0.5)
    with pytest.raises(ValueError, match="'neck'"):
        variant(raw, 3, "neck")
    assert "post-neck" in VARIANTS


def test_the_feature_model_serves_what_the_embedder_serves_and_what_it_is_made_of():
    from embedder.model import build_embedding_model, build_head
    from training.feature_study import feature_model
    from training.train import backbone_layer

    head = build_head(576, 8, seed=0, neck=True)
    model = build_embedding_model("mobilenet_v3_small", weights=None, embedding_dim=8, input_size=32, head=head)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    raw = np.asarray(feature_model(model)(x))
    assert raw.shape == (3, 576 + 8 + 8)
    np.testing.assert_allclose(variant(raw, 8, "post-neck"), np.asarray(model(x)), atol=1e-5)
    pooled = np.asarray(backbone_layer(model)(x))
    np.testing.assert_allclose(raw[:, :576], pooled, atol=1e-4)


def test_a_model_without_a_neck_is_refused():
    from embedder.model import build_embedding_model
    from training.feature_study import feature_model

    model = build_embedding_model("mobilenet_v3_small", weights=None, embedding_dim=8, input_size=32)
    with pytest.raises(ValueError, match="neck"):
        feature_model(model)
