"""Real Keras models, real LiteRT conversion (small input size to stay fast)."""

import numpy as np
import pytest

from embedder.artifact import ModelNotFound, load_artifact
from embedder.backbones import BACKBONES, WeightsUnavailable, build_backbone
from embedder.runtime import KerasEmbedder, LiteRTEmbedder
from tests.conftest import TEST_INPUT_SIZE


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_builds_and_takes_raw_pixels(name):
    backbone = build_backbone(name, 64, weights=None)
    out = backbone.predict(np.full((2, 64, 64, 3), 200.0, np.float32), verbose=0)
    assert out.shape == (2, BACKBONES[name].feature_dim)


def test_imagenet_unavailable_names_both_ways_out(monkeypatch):
    import keras

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_network, raising=False)
    with pytest.raises(WeightsUnavailable) as info:
        build_backbone("mobilenet_v3_small", 224, weights="imagenet")
    message = str(info.value)
    assert "SKULENS_BACKBONE_WEIGHTS" in message and "--weights none" in message
    assert "network unreachable" in message  # our stand-in failed, so no download was attempted


def test_missing_weights_file_is_named():
    with pytest.raises(FileNotFoundError) as info:
        build_backbone("mobilenet_v2", 96, weights="/nonexistent/w.weights.h5")
    assert "/nonexistent/w.weights.h5" in str(info.value)


def test_artifact_round_trip_and_version_is_content_hash(tiny_model_dir, other_model_dir):
    artifact = load_artifact(tiny_model_dir)
    assert artifact.embedding_dim == 256 and artifact.input_size == TEST_INPUT_SIZE
    assert artifact.backbone == "mobilenet_v3_small" and artifact.trained is False
    assert len(artifact.version) == 16
    assert load_artifact(other_model_dir).version != artifact.version


def test_edited_model_file_is_detected(tmp_path, tiny_model_dir):
    for name in ("model.tflite", "model.json"):
        (tmp_path / name).write_bytes((tiny_model_dir / name).read_bytes())
    with open(tmp_path / "model.tflite", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match="edited"):
        load_artifact(tmp_path)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelNotFound):
        load_artifact(tmp_path / "nothing")


def test_litert_matches_keras_and_gives_unit_vectors():
    from embedder.export import export_model
    from embedder.model import build_embedding_model

    model = build_embedding_model("mobilenet_v3_small", weights=None, input_size=64, seed=3)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        artifact = export_model(
            model,
            tmp,
            backbone="mobilenet_v3_small",
            input_size=64,
            embedding_dim=256,
            weights_origin="random initialisation",
            trained=False,
        )
        lite = LiteRTEmbedder(artifact, num_threads=1).embed(pixels)
    keras_out = KerasEmbedder(model).embed(pixels)
    assert lite.shape == (5, 256) and lite.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(lite, axis=1), 1.0, atol=1e-5)
    assert np.abs(lite - keras_out).max() < 1e-4


def test_batch_sizes_give_the_same_vectors(tiny_embedder):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(7, TEST_INPUT_SIZE, TEST_INPUT_SIZE, 3), dtype=np.uint8)
    together = tiny_embedder.embed(pixels)
    one_by_one = np.vstack([tiny_embedder.embed(p[None]) for p in pixels])
    in_threes = np.vstack([tiny_embedder.embed(pixels[i : i + 3]) for i in range(0, 7, 3)])
    assert np.abs(together - one_by_one).max() < 1e-5 and np.abs(together - in_threes).max() < 1e-5
    assert tiny_embedder.embed(pixels[:0]).shape == (0, 256)


def test_wrong_pixel_shape_is_refused(tiny_embedder):
    with pytest.raises(ValueError, match=r"\(n, 96, 96, 3\)"):
        tiny_embedder.embed(np.zeros((1, 32, 32, 3), np.uint8))


def test_batches_are_split_into_power_of_two_chunks(tiny_embedder):
    assert tiny_embedder.chunk_sizes(13) == [8, 4, 1]
    assert tiny_embedder.chunk_sizes(70) == [32, 32, 4, 2]
    assert tiny_embedder.chunk_sizes(0) == []
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(13, TEST_INPUT_SIZE, TEST_INPUT_SIZE, 3), dtype=np.uint8)
    together = tiny_embedder.embed(pixels)
    assert np.abs(together - np.vstack([tiny_embedder.embed(p[None]) for p in pixels])).max() < 1e-5
    assert set(tiny_embedder._interpreters) <= {1, 2, 4, 8, 16, 32}
