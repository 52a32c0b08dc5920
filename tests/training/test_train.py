"""The training schedule end to end on a tiny synthetic dataset (random-weight MobileNetV3Small, 32 px).

One module-scoped run through the real CLI (``skulens train --stage all``) is shared by the tests:
building and tracing even the smallest MobileNet costs seconds.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_jpeg
from training.config import StageConfig, TrainConfig

SIZE = 32


def tiny_config(dataset: Path, cache: Path) -> TrainConfig:
    return TrainConfig(
        backbone="mobilenet_v3_small",
        weights="none",
        input_size=SIZE,
        embedding_dim=16,
        data_dir=str(dataset),
        held_out=("Kept-Back",),
        feature_views=1,
        cache_dir=str(cache),
        stage1=StageConfig(p=3, k=2, epochs=2, steps_per_epoch=2, learning_rate=1e-3),
        stage2=StageConfig(p=2, k=2, epochs=1, steps_per_epoch=1, learning_rate=1e-4),
        unfreeze_blocks=1,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, TrainConfig]:
    """A synthetic shop (3 SKUs + 1 held out), trained through ``skulens train``: (output folder, config)."""
    from service.cli import main

    root = tmp_path_factory.mktemp("shop")
    for split, count in (("train", 4), ("val", 1)):
        for s, sku in enumerate(("Apple", "Milk", "Juice", "Kept-Back")):
            folder = root / split / sku
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.jpg").write_bytes(make_jpeg(100 * s + i + (50 if split == "val" else 0)))
    config = tiny_config(root, root / "cache")
    config.save(root / "config.json")
    out = root / "run"
    assert main(["train", "--config", str(root / "config.json"), "--stage", "all", "--out", str(out)]) == 0
    return out, config


def test_config_file_round_trip(tmp_path):
    config = TrainConfig.load(Path(__file__).resolve().parents[2] / "training" / "configs" / "shipped.json")
    assert config.backbone == "mobilenet_v2" and config.embedding_dim == 256
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config
    (tmp_path / "bad.json").write_text('{"learning_rat": 1}')
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.load(tmp_path / "bad.json")


def test_weights_resolution(monkeypatch):
    monkeypatch.delenv("SKULENS_BACKBONE_WEIGHTS", raising=False)
    assert TrainConfig().resolved_weights() == "imagenet"
    monkeypatch.setenv("SKULENS_BACKBONE_WEIGHTS", "/some/file.weights.h5")
    assert TrainConfig().resolved_weights() == "/some/file.weights.h5"
    assert TrainConfig(weights="none").resolved_weights() is None


def test_cli_parser_flags():
    from service.cli import build_parser

    args = build_parser().parse_args(["train", "--stage", "2", "--resume", "--weights", "none", "--stage2-epochs", "3"])
    assert callable(args.func) and args.resume and args.stage2_epochs == 3
    args = build_parser().parse_args(["export", "runs/x/stage2", "--out", "m", "--precision", "float16"])
    assert callable(args.func) and args.precision == "float16"


def test_all_stages_write_models_logs_and_checkpoints(trained):
    out, _ = trained
    for stage in ("untrained", "stage1", "stage2"):
        assert (out / stage / "model.keras").is_file()
    state = json.loads((out / "stage2" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1 and 0.0 <= state["best_recall_at_1"] <= 1.0
    assert list((out / "stage1" / "logs").iterdir())  # TensorBoard event file
    meta = json.loads((out / "stage2" / "training_meta.json").read_text())
    assert meta["held_out_skus"] == ["Kept-Back"] and meta["weights_origin"] == "random initialisation"
    assert json.loads((out / "config.json").read_text())["backbone"] == "mobilenet_v3_small"


def test_resume_continues_after_the_last_epoch(trained):
    from training.train import run

    out, config = trained
    run(replace(config, stage2=replace(config.stage2, epochs=2)), out, stage="2", resume=True)
    state = json.loads((out / "stage2" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]] == [0, 1, 2]


def test_export_matches_keras(trained, tmp_path):
    import keras

    from embedder.artifact import load_artifact
    from embedder.runtime import KerasEmbedder, LiteRTEmbedder
    from service.cli import main

    out, _ = trained
    assert main(["export", str(out / "stage1"), "--out", str(tmp_path / "model")]) == 0
    artifact = load_artifact(tmp_path / "model")
    assert artifact.trained and artifact.backbone == "mobilenet_v3_small" and artifact.embedding_dim == 16
    pixels = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    keras_out = KerasEmbedder(keras.models.load_model(out / "stage1" / "model.keras")).embed(pixels)
    assert np.abs(LiteRTEmbedder(artifact).embed(pixels) - keras_out).max() < 1e-4


def test_unfreeze_top_keeps_batchnorm_frozen():
    import keras

    from embedder.model import build_embedding_model
    from training.train import unfreeze_top

    model = build_embedding_model("mobilenet_v3_small", weights=None, embedding_dim=8, input_size=SIZE)
    for layer in model.layers:
        layer.trainable = False
    names = unfreeze_top(model, 1)
    assert names and names[0].startswith("expanded_conv_10_")
    inner = model.get_layer("backbone_mobilenet_v3_small").layers[-1]
    assert not [
        w
        for layer in inner.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.trainable_weights
    ]
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    assert np.allclose(model(x, training=True), model(x, training=False), atol=1e-6)  # BN in inference mode


def test_listing_excludes_held_out_and_labels_val_like_train(trained):
    from training.data import list_image_folder, select_skus

    root = trained[1].data_dir
    train = list_image_folder(Path(root) / "train", exclude=("Kept-Back",))
    val = list_image_folder(Path(root) / "val", class_names=train.class_names)
    assert train.class_names == ("Apple", "Juice", "Milk") and len(train) == 12
    assert [train.class_names[i] for i in val.labels] == ["Apple", "Juice", "Milk"]
    assert select_skus(["b", "a", "c"], exclude=["c"]) == ["a", "b"]
    with pytest.raises(ValueError, match="Pear"):
        select_skus(["a"], include=["Pear"])


def test_held_out_skus_exist_in_grocery(grocery):
    from evaluation.data import HELD_OUT_SKUS
    from training.data import list_skus

    skus = list_skus(grocery / "train")
    assert len(HELD_OUT_SKUS) == 10 and set(HELD_OUT_SKUS) <= set(skus)
    assert len(skus) - len(HELD_OUT_SKUS) == 51
