"""One-stage fine-tuning (BNNeck, EMA, catalogue photos) and the fold protocol, end to end on a
tiny synthetic shop (random-weight MobileNetV3Small, 32 px) through the real CLI."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_jpeg
from training.config import StageConfig, TrainConfig

SIZE = 32
SKUS = ("Apple", "Milk", "Juice", "Pear")


def studio_jpeg(seed: int) -> bytes:
    image = np.full((64, 64, 3), 255, np.uint8)
    image[16:48, 20:44] = np.random.default_rng(seed).integers(0, 200, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    for split, count in (("train", 4), ("val", 2)):
        for s, sku in enumerate(SKUS):
            folder = root / split / sku
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.jpg").write_bytes(make_jpeg(100 * s + i + (50 if split == "val" else 0)))
    (root / "iconic").mkdir()
    for s, sku in enumerate(SKUS):
        (root / "iconic" / f"{sku}.jpg").write_bytes(studio_jpeg(s))
    return root


def finetune_config(shop: Path, **changes) -> TrainConfig:
    values = dict(
        backbone="mobilenet_v3_small",
        weights="none",
        input_size=SIZE,
        embedding_dim=16,
        data_dir=str(shop),
        held_out=("Pear",),
        cache_dir=str(shop / "cache"),
        schedule="finetune",
        unfreeze_blocks=-1,
        finetune=StageConfig(p=2, k=2, epochs=2, steps_per_epoch=2, learning_rate=1e-3),
        warmup_epochs=1,
        neck=True,
        ema_momentum=0.9,
        catalogue_p=0.5,
    )
    values.update(changes)
    return TrainConfig(**values)


def test_finetune_trains_every_layer_saves_a_unit_vector_model_and_resumes(shop, tmp_path):
    import keras

    from service.cli import main
    from training.train import run

    config = finetune_config(shop)
    config.save(tmp_path / "c.json")
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.json"), "--out", str(out)]) == 0
    state = json.loads((out / "finetune" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2 and state["best_epoch"] is None  # no epoch chosen on val photos
    model = keras.models.load_model(out / "finetune" / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (3, 16) and np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    assert model.get_layer("head").get_layer("neck")  # the served vector is the normalised post-BN feature
    run(
        config.__class__.from_dict({**config.to_dict(), "finetune": {**config.to_dict()["finetune"], "epochs": 3}}),
        out,
        resume=True,
    )
    state = json.loads((out / "finetune" / "checkpoint" / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3]


def test_finetune_with_the_cosine_margin_classifier_trains_and_moves_its_weights(shop, tmp_path):
    import keras

    from training.train import run

    config = finetune_config(shop, classifier="cosine", cosine_scale=16.0, cosine_margin=0.2, ema_momentum=None)
    out = tmp_path / "run"
    run(config, out, resume=False)
    state = json.loads((out / "finetune" / "checkpoint" / "state.json").read_text())
    assert all(np.isfinite(row["loss"]) for row in state["history"])
    model = keras.models.load_model(out / "finetune" / "model.keras")
    y = np.asarray(model(np.zeros((2, SIZE, SIZE, 3), np.float32), training=False))
    assert y.shape == (2, 16) and np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("pooling", ["gem", "gem_multiscale"])
def test_finetune_with_gem_pooling_trains_and_reloads(shop, tmp_path, pooling):
    from embedder.backbones import pooled_feature_dim
    from training.train import load_trained_model, run

    config = finetune_config(
        shop,
        pooling=pooling,
        finetune=StageConfig(p=2, k=2, epochs=2, steps_per_epoch=2, learning_rate=1e-2),
        ema_momentum=None,
    )
    out = tmp_path / "run"
    run(config, out, resume=False)
    model = load_trained_model(out / "finetune" / "model.keras")
    backbone = model.get_layer(f"backbone_{config.backbone}")
    gem = backbone.get_layer("gem_pooling")
    assert backbone.output.shape[-1] == pooled_feature_dim(config.backbone, pooling)
    assert (pooling == "gem_multiscale") == any(layer.name == "gem_pooling_mid" for layer in backbone.layers)
    assert gem.p.trainable  # (random weights at 32 px give a 1x1 map: p's gradient is ~0 here, so it is not
    # checked to move; tests/embedder/test_pooling.py checks its gradient and that a changed p survives a reload)
    y = np.asarray(model(np.zeros((2, SIZE, SIZE, 3), np.float32), training=False))
    assert np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("batchnorm", ["frozen", "train"])
def test_batchnorm_setting_decides_whether_the_backbones_statistics_and_scales_move(shop, tmp_path, batchnorm):
    """Random-init BatchNorm starts at mean 0, variance 1, scale 1, shift 0: "frozen" keeps every one of
    them, "train" learns the scales and follows the batches' statistics; the saved model serves the same."""
    import keras

    from training.train import backbone_network, load_trained_model, run

    config = finetune_config(
        shop,
        batchnorm=batchnorm,
        finetune=StageConfig(p=2, k=2, epochs=1, steps_per_epoch=2, learning_rate=1e-2),
        ema_momentum=None,
    )
    run(config, tmp_path / "run", resume=False)
    model = load_trained_model(tmp_path / "run" / "finetune" / "model.keras")
    norms = [x for x in backbone_network(model).layers if isinstance(x, keras.layers.BatchNormalization)]
    initial = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
    moved = {name: any(not np.allclose(np.asarray(getattr(x, name)), v) for x in norms) for name, v in initial.items()}
    assert moved == dict.fromkeys(initial, batchnorm == "train")
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    # served in inference mode: a photo's vector does not depend on the other photos of its batch
    np.testing.assert_allclose(np.asarray(model(x))[:1], np.asarray(model(x[:1])), atol=1e-5)


def test_finetune_with_the_centre_loss_moves_a_centre_per_sku_and_resumes_with_them(shop, tmp_path, monkeypatch):
    """The centres (one per trained SKU, starting at zero) follow the batches, are checkpointed with the network
    and restored on resume, and stay out of the served model (moving average of the weights on, as shipped)."""
    import h5py
    import keras

    from training import loop
    from training.train import run

    config = finetune_config(shop, centre_weight=1.0)
    out = tmp_path / "run"
    run(config, out, resume=False)

    def saved_centres() -> np.ndarray:
        found: list[np.ndarray] = []
        with h5py.File(out / "finetune" / "checkpoint" / "model.weights.h5") as f:
            f.visititems(lambda name, item: found.append(item[()]) if isinstance(item, h5py.Dataset) else None)
        shaped = [x for x in found if x.shape == (3, 16)]  # 3 trained SKUs (Pear held out), 16-d
        assert len(shaped) == 1, [x.shape for x in found]
        return shaped[0]

    first = saved_centres()
    norms = np.linalg.norm(first, axis=1)
    assert np.all(norms > 0.05) and np.all(norms <= 1.0)  # moved off zero towards their unit-vector photos
    model = keras.models.load_model(out / "finetune" / "model.keras")
    assert not any("centres" in w.path for w in model.weights)

    restored: list[np.ndarray] = []
    original = loop.Checkpoint.restore

    def recording_restore(self, trainer, optimizer):
        state = original(self, trainer, optimizer)
        restored.append(np.asarray(trainer.centres))
        return state

    monkeypatch.setattr(loop.Checkpoint, "restore", recording_restore)
    grown = {**config.to_dict(), "finetune": {**config.to_dict()["finetune"], "epochs": 3}}
    run(config.__class__.from_dict(grown), out, resume=True)
    np.testing.assert_array_equal(restored[0], first)  # resumed from the checkpoint's centres, not from zero
    state = json.loads((out / "finetune" / "checkpoint" / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3]
    assert all(np.isfinite(row["loss"]) for row in state["history"])
    assert not np.allclose(saved_centres(), first)  # and kept moving them


def test_blend_negatives_add_a_loss_on_the_mixed_last_maps_that_scales_with_its_weight(shop):
    """``last_maps`` + the GeM layer reproduce the backbone's output (so the blends are made from the very maps
    the photos are pooled from), and the joint loss grows by ``blend_weight`` times one positive term."""
    import keras

    from embedder.backbones import pooled_feature_dim
    from embedder.model import build_head
    from training.finetune import joint_loss, last_maps
    from training.train import backbone_layer, build_model

    config = finetune_config(shop, pooling="gem", blend_negatives=3, ema_momentum=None)
    head = build_head(pooled_feature_dim(config.backbone, "gem"), config.embedding_dim, seed=0, neck=True)
    model = build_model(config, head=head)
    classifier = keras.layers.Dense(3, use_bias=False, name="classifier")
    classifier.build((None, config.embedding_dim))
    x = np.random.default_rng(3).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    maps = last_maps(model)
    base = backbone_layer(model)
    np.testing.assert_allclose(
        np.asarray(base.get_layer("gem_pooling")(maps(x))), np.asarray(base(x)), rtol=1e-5, atol=1e-6
    )
    plain, _ = joint_loss(head, classifier, finetune_config(shop, pooling="gem"), 3)(model, x, y)
    losses = {}
    for weight in (1.0, 2.0):
        blend = finetune_config(shop, pooling="gem", blend_negatives=3, blend_weight=weight, ema_momentum=None)
        losses[weight] = float(joint_loss(head, classifier, blend, 3, maps=maps)(model, x, y)[0])
    extra = losses[1.0] - float(plain)
    assert extra > 0.01  # softplus of a distance difference: never zero
    assert losses[2.0] - float(plain) == pytest.approx(2 * extra, rel=1e-3)


def test_finetune_with_blend_negatives_trains_and_keeps_the_frozen_batchnorm(shop, tmp_path):
    import keras

    from training.train import backbone_network, load_trained_model, run

    config = finetune_config(
        shop,
        pooling="gem",
        blend_negatives=2,
        finetune=StageConfig(p=2, k=2, epochs=1, steps_per_epoch=2, learning_rate=1e-2),
        ema_momentum=None,
    )
    run(config, tmp_path / "run", resume=False)
    state = json.loads((tmp_path / "run" / "finetune" / "checkpoint" / "state.json").read_text())
    assert all(np.isfinite(row["loss"]) for row in state["history"])
    model = load_trained_model(tmp_path / "run" / "finetune" / "model.keras")
    norms = [x for x in backbone_network(model).layers if isinstance(x, keras.layers.BatchNormalization)]
    assert all(np.allclose(np.asarray(x.moving_mean), 0.0) and np.allclose(np.asarray(x.gamma), 1.0) for x in norms)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"blend_negatives": -1}, r"blend_negatives must be in \[0, finetune.p \* finetune.k = 4\], got -1"),
        ({"blend_negatives": 5}, "got 5"),
        ({"blend_negatives": 2}, "pooling 'avg'"),
        ({"blend_negatives": 2, "pooling": "gem", "neck": False}, "neck False"),
        ({"blend_negatives": 2, "pooling": "gem", "batchnorm": "train"}, "batchnorm 'train'"),
        ({"blend_range": [0.6, 0.4]}, r"blend_range must be \(low, high\) with 0 < low <= high < 1, got \(0.6, 0.4\)"),
        ({"blend_weight": -1.0}, "blend_weight must be >= 0, got -1.0"),
        ({"blend_range": [0.4]}, r"got \(0.4,\)"),
        (
            {"blend_negatives": 2, "pooling": "gem", "finetune": {"p": 1, "k": 4}},
            "batches of at least 2 SKUs, got finetune.p 1",
        ),
    ],
)
def test_blend_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**finetune_config(shop).to_dict(), **changes})


def test_finetune_with_look_alike_groups_trains_on_grouped_batches(shop, tmp_path, caplog):
    from training.train import run

    config = finetune_config(shop, lookalike_group=2, ema_momentum=None)
    with caplog.at_level("INFO", logger="training.finetune"):
        run(config, tmp_path / "run", resume=False)
    groups = next(r.getMessage() for r in caplog.records if "look-alike groups" in r.getMessage())
    assert all(sku in groups for sku in ("Apple", "Milk", "Juice")) and "Pear" not in groups  # held out
    state = json.loads((tmp_path / "run" / "finetune" / "checkpoint" / "state.json").read_text())
    assert len(state["history"]) == 2 and all(np.isfinite(row["loss"]) for row in state["history"])


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"lookalike_group": 0}, "lookalike_group must be in .1, finetune.p=2., got 0"),
        ({"lookalike_group": 3}, "got 3"),
        ({"lookalike_group": 2, "schedule": "two_stage"}, "needs schedule 'finetune'"),
    ],
)
def test_lookalike_group_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        finetune_config(shop, **changes)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"pooling": "max"}, "'max'"),
        ({"pooling": "gem", "schedule": "two_stage"}, "two_stage"),
        ({"batchnorm": "learn"}, "'learn'"),
        ({"batchnorm": "train", "unfreeze_blocks": 3}, "unfreeze_blocks 3"),
    ],
)
def test_pooling_and_batchnorm_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        finetune_config(shop, **changes)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"classifier": "arcface"}, "arcface"),
        ({"cosine_margin": 1.5}, "1.5"),
        ({"cosine_scale": 0.0}, "0.0"),
    ],
)
def test_classifier_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        finetune_config(shop, **changes)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"centre_weight": -0.5}, "centre_weight must be >= 0, got -0.5"),
        ({"centre_weight": 0.5, "neck": False}, "neck False"),
        ({"centre_weight": 0.5, "schedule": "two_stage"}, "schedule 'two_stage'"),
        ({"centre_alpha": 0.0}, "centre_alpha must be in .0, 1., got 0.0"),
        ({"centre_alpha": 1.5}, "got 1.5"),
    ],
)
def test_centre_loss_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        finetune_config(shop, **changes)


def test_fold_protocol_writes_every_figure(shop, tmp_path):
    from service.cli import main

    config = finetune_config(
        shop, finetune=StageConfig(p=2, k=2, epochs=1, steps_per_epoch=1, learning_rate=1e-3), ema_momentum=None
    )
    config.save(tmp_path / "c.json")
    assert (
        main(["folds", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "folds"), "--n-folds", "2"]) == 0
    )
    summary = json.loads((tmp_path / "folds" / "summary.json").read_text())
    figures = summary["figures"]
    # a later run of one fold still summarises both (it reads the other's result)
    argv = ["folds", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "folds"), "--n-folds", "2"]
    assert main([*argv, "--folds", "1"]) == 0
    again = json.loads((tmp_path / "folds" / "summary.json").read_text())
    assert again["folds"] == [0, 1] and again["figures"] == figures
    # ...but never another recipe's: fold 0 was trained with seed 0, so a seed-5 run of fold 1 leaves it out
    dataclasses.replace(config, seed=5).save(tmp_path / "c5.json")
    other = ["folds", "--config", str(tmp_path / "c5.json"), "--out", str(tmp_path / "folds"), "--n-folds", "2"]
    assert main([*other, "--folds", "1"]) == 0
    assert json.loads((tmp_path / "folds" / "summary.json").read_text())["folds"] == [1]
    assert main([*argv, "--folds", "1"]) == 0  # the same recipe again: both
    for key in (
        "top1_clean_never_trained",
        "top1_shifted_all",
        "auroc_clean",
        "catalogue_with_views_all",
        "at_p95_shifted_precision",
    ):
        assert len(figures[key]["folds"]) == 2
    folds = [set(v) for v in summary["fold_skus"].values()]
    assert folds[0].isdisjoint(folds[1]) and folds[0] | folds[1] == set(SKUS)
    row = json.loads((tmp_path / "folds" / "fold0" / "result.json").read_text())
    assert row["never_trained_queries"] == 2 * len(row["fold_skus"])
    assert "| top-1 clean, never-trained SKUs |" in (tmp_path / "folds" / "summary.md").read_text()


def quick_folds_argv(shop, tmp_path) -> list[str]:
    """``skulens folds`` of two folds of a one-step recipe, without catalogue photos."""
    config = finetune_config(
        shop,
        finetune=StageConfig(p=2, k=2, epochs=1, steps_per_epoch=1, learning_rate=1e-3),
        ema_momentum=None,
        catalogue_p=0.0,
    )
    config.save(tmp_path / "c.json")
    return ["folds", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "folds"), "--n-folds", "2"]


def test_fold_protocol_measures_the_litert_export_without_training(shop, tmp_path):
    from service.cli import main

    argv = quick_folds_argv(shop, tmp_path)
    with pytest.raises(SystemExit, match="without --precision or --serve-size first"):
        main([*argv, "--precision", "int8"])
    with pytest.raises(SystemExit, match="--remeasure never trains or embeds"):
        main([*argv, "--remeasure"])
    assert not (tmp_path / "folds" / "fold0" / "finetune").exists()
    assert main(argv) == 0
    # a result written before the protocol recorded the runner-up gains it from the saved vectors, nothing retrained
    result = tmp_path / "folds" / "fold0" / "result.json"
    model = tmp_path / "folds" / "fold0" / "finetune" / "model.keras"
    row, trained = json.loads(result.read_text()), model.stat().st_mtime_ns
    old = {c: row["open_set"][c].pop("runner_up") for c in ("clean", "shifted")}
    result.write_text(json.dumps(row))
    assert main([*argv, "--remeasure"]) == 0
    again = json.loads(result.read_text())
    assert {c: again["open_set"][c]["runner_up"] for c in old} == old and model.stat().st_mtime_ns == trained
    assert main([*argv, "--precision", "int8"]) == 0
    keras_rows = [json.loads((tmp_path / "folds" / f"fold{f}" / "result.json").read_text()) for f in (0, 1)]
    int8_rows = [json.loads((tmp_path / "folds" / f"fold{f}" / "result-int8.json").read_text()) for f in (0, 1)]
    assert all(r["precision"] == "int8" for r in int8_rows) and keras_rows[0]["precision"] == "keras"
    assert (tmp_path / "folds" / "fold0" / "litert-int8" / "model.tflite").is_file()
    assert json.loads((tmp_path / "folds" / "summary-int8.json").read_text())["precision"] == "int8"
    for k, q in zip(keras_rows, int8_rows):
        assert q["queries"] == k["queries"] and 0.0 <= q["clean"]["all"] <= 1.0


def test_fold_models_are_measured_and_exported_at_a_serving_size_above_the_training_one(shop, tmp_path, capsys):
    """``--serve-size``: the fold models measured at another input size (Keras and LiteRT), never
    retrained; ``export --serve-size`` writes a file for that size and calibrates only on that size."""
    from embedder.artifact import load_artifact
    from service.cli import main

    argv, folds = quick_folds_argv(shop, tmp_path), tmp_path / "folds"
    with pytest.raises(SystemExit, match="without --precision or --serve-size first"):
        main([*argv, "--serve-size", str(SIZE + 32)])
    assert main(argv) == 0
    trained = (folds / "fold0" / "finetune" / "model.keras").stat().st_mtime_ns
    assert main([*argv, "--serve-size", str(SIZE + 32)]) == 0
    assert main([*argv, "--serve-size", str(SIZE + 32), "--precision", "float32"]) == 0
    assert (folds / "fold0" / "finetune" / "model.keras").stat().st_mtime_ns == trained
    keras_row = json.loads((folds / "fold0" / f"result-keras-{SIZE + 32}px.json").read_text())
    litert_row = json.loads((folds / "fold0" / f"result-float32-{SIZE + 32}px.json").read_text())
    assert keras_row["input_size"] == litert_row["input_size"] == SIZE + 32
    assert json.loads((folds / "fold0" / "result.json").read_text())["input_size"] == SIZE
    assert load_artifact(folds / "fold0" / f"litert-float32-{SIZE + 32}px").input_size == SIZE + 32
    assert np.load(folds / "fold0" / f"vectors-keras-{SIZE + 32}px.npz")["queries"].shape[1] == 16
    assert json.loads((folds / f"summary-float32-{SIZE + 32}px.json").read_text())["input_size"] == SIZE + 32

    model = str(folds / "fold0" / "finetune")
    out = tmp_path / "served"
    assert main(["export", model, "--out", str(out), "--serve-size", str(SIZE + 32)]) == 0
    artifact = load_artifact(out)
    assert artifact.input_size == SIZE + 32 and artifact.extra["trained_input_size"] == SIZE
    calibrate = ["--calibration-from-folds", str(folds), "--target-precision", "0.2"]
    with pytest.raises(SystemExit, match=f"result-keras-{SIZE + 64}px.json"):  # that size was never measured
        main(["export", model, "--out", str(tmp_path / "x"), "--serve-size", str(SIZE + 64), *calibrate])
    # int8 at the serving size: calibrated on photos decoded at that size; the threshold from the Keras
    # models' results at that size (no int8 results there), never from another size's
    int8 = tmp_path / "served-int8"
    argv = ["export", model, "--out", str(int8), "--serve-size", str(SIZE + 32), "--precision", "int8", *calibrate]
    assert main(argv) == 0
    record = load_artifact(int8).extra["calibration"]
    assert load_artifact(int8).input_size == SIZE + 32
    assert record["provenance"]["data"]["fold_results"] == f"result-keras-{SIZE + 32}px.json"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["export", model, "--out", str(tmp_path / "y"), "--serve-size", "8"])
    assert "at least 32 px, got 8" in capsys.readouterr().err


def test_an_ensemble_of_fold_runs_is_measured_and_distilled_into_one_model(shop, tmp_path, capsys):
    """Two seeds' fold runs → their ensemble's fold figures (training.ensemble_folds) → a student trained
    with each fold's two teachers ("{fold}" in distill_from); a teacher from another fold is refused."""
    from service.cli import main
    from training.ensemble_folds import main as ensemble_main
    from training.feature_study import main as feature_main
    from training.whitening_study import main as whitening_main

    stage = StageConfig(p=2, k=2, epochs=1, steps_per_epoch=1, learning_rate=1e-3)
    for seed in (0, 1):
        finetune_config(shop, finetune=stage, ema_momentum=None, seed=seed).save(tmp_path / f"t{seed}.json")
        argv = ["folds", "--config", str(tmp_path / f"t{seed}.json"), "--out", str(tmp_path / f"t{seed}")]
        assert main([*argv, "--n-folds", "2"]) == 0
        assert (tmp_path / f"t{seed}" / "fold0" / "vectors-keras.npz").is_file()
    assert ensemble_main([str(tmp_path / "t0"), str(tmp_path / "t1"), "--out", str(tmp_path / "ens")]) == 0
    ensemble = json.loads((tmp_path / "ens" / "summary.json").read_text())["figures"]
    assert len(ensemble["auroc_clean"]["folds"]) == 2 and 0 <= ensemble["top1_clean_all"]["mean"] <= 1
    # the same ensemble from the members' LiteRT vectors, once `skulens folds --precision` has measured them
    runs = [str(tmp_path / "t0"), str(tmp_path / "t1")]
    with pytest.raises(SystemExit, match=r"no fold has a result-float32.json in every run"):
        ensemble_main([*runs, "--out", str(tmp_path / "ens"), "--precision", "float32"])
    for seed in (0, 1):
        argv = ["folds", "--config", str(tmp_path / f"t{seed}.json"), "--out", str(tmp_path / f"t{seed}")]
        assert main([*argv, "--n-folds", "2", "--precision", "float32"]) == 0
    assert ensemble_main([*runs, "--out", str(tmp_path / "ens"), "--precision", "float32"]) == 0
    litert_row = json.loads((tmp_path / "ens" / "fold0" / "result-float32.json").read_text())
    keras_row = json.loads((tmp_path / "ens" / "fold0" / "result.json").read_text())
    assert litert_row["precision"] == "float32" and keras_row["precision"] == "keras"
    np.testing.assert_allclose(
        litert_row["open_set"]["clean"]["score"], keras_row["open_set"]["clean"]["score"], atol=1e-3
    )
    assert (tmp_path / "ens" / "summary-float32.json").is_file()
    # the ensemble as one served file (training.ensemble_model): its vectors are the members' joined, and its
    # threshold comes from the ensemble's fold scores
    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder
    from training.distill import teacher_embedding
    from training.ensemble_model import main as join_main
    from training.train import load_trained_model

    members = [tmp_path / f"t{seed}" / "fold0" / "finetune" for seed in (0, 1)]
    assert join_main([*map(str, members), "--out", str(tmp_path / "joined")]) == 0
    calibrate = ["--calibration-from-folds", str(tmp_path / "ens"), "--target-precision", "0.2"]
    assert main(["export", str(tmp_path / "joined" / "finetune"), "--out", str(tmp_path / "ens-file"), *calibrate]) == 0
    served = load_artifact(tmp_path / "ens-file")
    with pytest.raises(
        SystemExit, match=f"an ensemble cannot be re-sized .--serve-size {SIZE + 32}, trained at {SIZE}."
    ):
        main(
            [
                "export",
                str(tmp_path / "joined" / "finetune"),
                "--out",
                str(tmp_path / "x"),
                "--serve-size",
                str(SIZE + 32),
            ]
        )
    assert served.embedding_dim == 32 and [m["path"] for m in served.extra["members"]] == list(map(str, members))
    assert served.extra["calibration"]["provenance"]["data"]["fold_run"] == str(tmp_path / "ens")
    pixels = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    expected = teacher_embedding(
        [np.asarray(load_trained_model(m / "model.keras")(pixels.astype("float32"))) for m in members]
    )
    np.testing.assert_allclose(LiteRTEmbedder(served, num_threads=1).embed(pixels), expected, atol=2e-3)
    assert whitening_main([str(tmp_path / "t0"), "--shrink", "1"]) == 0  # the fold vectors, mapped
    printed = capsys.readouterr().out
    assert "| whitening, shrink 1 |" in printed
    unmapped = next(line for line in printed.splitlines() if line.startswith("| none |"))
    assert feature_main([str(tmp_path / "t0"), "--pooled-weights", "0.5"]) == 0
    rows = {line.split(" | ")[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"| pooled", "| pre-neck", "| post-neck", "| pre + post", "| pooled at 0.5 + post-neck"}
    assert unmapped.count(" | ") == rows["| post-neck"].count(" | ") - 1  # one more column: catalogue
    # the served feature, embedded again by the feature model, is the vector skulens folds measured
    # (compared as vectors: this one-step random network's similarities are too close for figures to be stable)
    from training.data import list_skus
    from training.feature_study import variant
    from training.folds import load_vectors

    skus = tuple(list_skus(shop / "train"))
    served = load_vectors(tmp_path / "t0" / "fold0" / "vectors-keras.npz", skus)
    features = load_vectors(tmp_path / "t0" / "fold0" / "vectors-features.npz", skus)
    for name in ("gallery", "queries", "shifted", "catalogue"):
        np.testing.assert_allclose(variant(getattr(features, name), 16, "post-neck"), getattr(served, name), atol=1e-4)
    teachers = [str(tmp_path / f"t{seed}" / "fold{fold}" / "finetune" / "model.keras") for seed in (0, 1)]
    finetune_config(shop, finetune=stage, ema_momentum=None, distill_from=teachers).save(tmp_path / "s.json")
    argv = ["folds", "--config", str(tmp_path / "s.json"), "--out", str(tmp_path / "student"), "--n-folds", "2"]
    assert main([*argv, "--folds", "1"]) == 0
    targets = np.load(tmp_path / "student" / "fold1" / "finetune" / "teacher.npy")
    assert targets.shape[1] == 2 * 16 and np.allclose(np.linalg.norm(targets, axis=1), 1.0, atol=1e-5)
    saved = json.loads((tmp_path / "student" / "fold1" / "config.json").read_text())
    assert saved["distill_from"][0].endswith("t0/fold1/finetune/model.keras")
    wrong = [t.replace("{fold}", "1") for t in teachers]  # fold 1's teachers were trained on fold 0's SKUs
    finetune_config(shop, finetune=stage, ema_momentum=None, distill_from=wrong).save(tmp_path / "w.json")
    argv = ["folds", "--config", str(tmp_path / "w.json"), "--out", str(tmp_path / "leak"), "--n-folds", "2"]
    with pytest.raises(ValueError, match="trained on SKUs the student holds out"):
        main([*argv, "--folds", "0"])


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"distill_from": ("t.keras",), "neck": False}, "neck False"),
        ({"distill_weight": -1.0}, "got -1.0"),
    ],
)
def test_distillation_settings_are_checked(shop, changes, match):
    with pytest.raises(ValueError, match=match):
        finetune_config(shop, **changes)
