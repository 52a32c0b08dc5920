"""An embedder rebuilt at another input size keeps its weights and pooling (serving above the training size)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from embedder.model import at_input_size, build_embedding_model, pooling_of  # noqa: E402


def _model() -> keras.Model:
    return build_embedding_model("mobilenet_v3_small", weights=None, input_size=64, seed=0, pooling="gem")


def test_same_size_gives_the_same_vectors():
    model = _model()
    rebuilt = at_input_size(model, 64)
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(model(x)), atol=1e-5)


def test_larger_size_runs_the_trained_weights():
    model = _model()
    rebuilt = at_input_size(model, 96)
    assert rebuilt.input_shape == (None, 96, 96, 3)
    x = np.random.default_rng(1).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    vectors = np.asarray(rebuilt(x))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the weights are the trained model's, not a fresh draw: a freshly built model at 96 px differs
    fresh = build_embedding_model("mobilenet_v3_small", weights=None, input_size=96, seed=1, pooling="gem")
    assert not np.allclose(vectors, np.asarray(fresh(x)), atol=1e-3)
    assert len(rebuilt.get_weights()) == len(model.get_weights())
    for a, b in zip(rebuilt.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pooling", ["avg", "gem", "gem_multiscale"])
def test_pooling_is_read_from_the_model_and_kept(pooling):
    model = build_embedding_model("mobilenet_v3_large_minimalistic", weights=None, input_size=64, pooling=pooling)
    assert pooling_of(model) == pooling
    assert pooling_of(at_input_size(model, 96)) == pooling


@pytest.mark.parametrize("size", [16, 96.0, "288", True])
def test_a_bad_size_is_refused_with_the_value(size):
    with pytest.raises(ValueError, match=repr(size).replace("(", r"\(").replace(".", r"\.")):
        at_input_size(_model(), size)
