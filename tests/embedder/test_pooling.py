"""GeM pooling: against a NumPy loop, its limits, a save/load round trip and a LiteRT export that agrees."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from embedder.backbones import build_backbone, pooled_feature_dim  # noqa: E402
from embedder.export import export_model  # noqa: E402
from embedder.model import build_embedding_model  # noqa: E402
from embedder.pooling import GeMPooling  # noqa: E402
from embedder.runtime import LiteRTEmbedder  # noqa: E402


def gem_loop(x: np.ndarray, p: float, eps: float = 1e-6) -> np.ndarray:
    n, h, w, c = x.shape
    out = np.zeros((n, c))
    for i in range(n):
        for k in range(c):
            total = 0.0
            for r in range(h):
                for s in range(w):
                    total += max(float(x[i, r, s, k]), eps) ** p
            out[i, k] = (total / (h * w)) ** (1.0 / p)
    return out


@pytest.mark.parametrize("p", [1.0, 3.0, 6.5])
def test_gem_matches_a_loop(p):
    x = np.random.default_rng(0).uniform(0, 4, (2, 3, 4, 5)).astype(np.float32)
    x[0, 0, 0, 0] = -1.0  # below eps: clamped, as ReLU features never are
    got = np.asarray(GeMPooling(p=p)(x))
    np.testing.assert_allclose(got, gem_loop(x, p), rtol=1e-4)


def test_gem_lies_between_mean_and_max():
    x = np.random.default_rng(1).uniform(0, 1, (3, 4, 4, 8)).astype(np.float32)
    got = np.asarray(GeMPooling(p=3.0)(x))
    assert np.all(got >= x.mean(axis=(1, 2)) - 1e-6) and np.all(got <= x.max(axis=(1, 2)) + 1e-6)
    assert not np.allclose(got, x.mean(axis=(1, 2)), atol=1e-3)  # p = 3 is not average pooling


def test_exponent_gets_a_gradient_and_a_changed_value_survives_a_reload(tmp_path):
    import tensorflow as tf

    from training.train import load_trained_model

    x = np.random.default_rng(3).uniform(0, 2, (2, 4, 4, 3)).astype(np.float32)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, GeMPooling(p=3.0, name="gem")(inputs))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(model(x))
    assert abs(float(tape.gradient(total, model.get_layer("gem").p))) > 1e-3
    model.get_layer("gem").p.assign(2.5)
    model.save(tmp_path / "m.keras")
    reloaded = load_trained_model(tmp_path / "m.keras")
    assert float(reloaded.get_layer("gem").p.numpy()) == pytest.approx(2.5)
    np.testing.assert_allclose(np.asarray(reloaded(x)), gem_loop(x, 2.5), rtol=1e-4)


def test_exponent_below_one_is_refused_with_the_value():
    with pytest.raises(ValueError, match=r"0\.5"):
        GeMPooling(p=0.5)


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="'max'"):
        build_backbone("mobilenet_v3_small", 64, weights=None, pooling="max")


@pytest.mark.parametrize("pooling, n_gem, width", [("gem", 1, 576), ("gem_multiscale", 2, 576 + 288)])
def test_gem_model_saves_loads_and_exports(tmp_path, pooling, n_gem, width):
    from training.train import load_trained_model

    model = build_embedding_model("mobilenet_v3_small", weights=None, input_size=64, seed=0, pooling=pooling)
    backbone = model.get_layer("backbone_mobilenet_v3_small")
    assert sum(isinstance(layer, GeMPooling) for layer in backbone.layers) == n_gem
    assert backbone.output.shape[-1] == width == pooled_feature_dim("mobilenet_v3_small", pooling)
    pixels = np.random.default_rng(2).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    expected = model.predict(pixels, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = load_trained_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(pixels, verbose=0), expected, atol=1e-5)
    artifact = export_model(
        reloaded,
        tmp_path / "exported",
        backbone="mobilenet_v3_small",
        input_size=64,
        embedding_dim=256,
        weights_origin="random initialisation",
        trained=False,
    )
    served = LiteRTEmbedder(artifact).embed(pixels.astype(np.uint8).astype(np.float32))
    np.testing.assert_allclose(served, model.predict(pixels.astype(np.uint8).astype(np.float32), verbose=0), atol=1e-4)


def test_multiscale_taps_the_stride_16_map_of_the_same_weights():
    """The mid-level GeM sees the backbone's own stride-16 map: a 64 px input gives a 4x4 map there."""
    backbone = build_backbone("mobilenet_v3_small", 64, weights=None, pooling="gem_multiscale")
    network = next(layer for layer in backbone.layers if isinstance(layer, keras.Model))
    mid, last = network.outputs
    assert tuple(mid.shape[1:]) == (4, 4, 288) and tuple(last.shape[1:]) == (2, 2, 576)
    mid_gem = backbone.get_layer("gem_pooling_mid")
    pixels = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    mid_map = np.asarray(network(pixels)[0])
    p = float(np.asarray(mid_gem.p))
    expected = np.mean(np.maximum(mid_map, 1e-6) ** p, axis=(1, 2)) ** (1 / p)
    np.testing.assert_allclose(np.asarray(backbone(pixels))[:, 576:], expected, rtol=1e-4, atol=1e-6)


def test_multiscale_without_a_tap_is_refused_with_the_backbone(monkeypatch):
    from dataclasses import replace

    from embedder import backbones
    from embedder.backbones import _two_scales, get_backbone

    spec = get_backbone("mobilenet_v3_small")
    monkeypatch.setitem(backbones.BACKBONES, "no_tap", replace(spec, name="no_tap", mid_tap=None))
    assert pooled_feature_dim("no_tap", "gem") == 576
    with pytest.raises(ValueError, match="'no_tap' has no stride-16 tap"):
        pooled_feature_dim("no_tap", "gem_multiscale")
    base = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None)
    with pytest.raises(ValueError, match="'mobilenet_v3_small' has no stride-16 tap"):
        _two_scales(base, replace(spec, mid_tap=None))
    with pytest.raises(ValueError, match="takes 288 channels, expected 100"):
        _two_scales(base, replace(spec, mid_dim=100))
