"""Training the item-centre model (``training/centres.py``): its targets and loss against naive loops, and a
tiny run end to end (scenes, features, head, LiteRT export) read back by the service's detector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.centre_targets import centre_targets, flip_boxes

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")


def test_targets_peak_at_each_box_centre():
    boxes = [np.array([[16, 8, 48, 40], [64, 40, 96, 72]], np.float32), np.zeros((0, 4), np.float32)]
    heat = centre_targets(boxes, height=96, width=128, stride=8)
    assert heat.shape == (2, 12, 16, 1) and heat[1].max() == 0.0
    for x0, y0, x1, y1 in boxes[0]:
        cx, cy = (x0 + x1) / 2 / 8 - 0.5, (y0 + y1) / 2 / 8 - 0.5
        assert heat[0, round(cy), round(cx), 0] == 1.0
        sigma = max(1.0, min(x1 - x0, y1 - y0) / 8 / 6)
        far = (round(cy), min(15, round(cx) + 2))  # two cells to the right: the Gaussian, not the peak
        expected = math.exp(-((far[1] - cx) ** 2 + (far[0] - cy) ** 2) / (2 * sigma**2))
        assert heat[0, far[0], far[1], 0] == pytest.approx(expected, rel=1e-5)
    assert int((heat[0] == 1.0).sum()) == 2


def test_flipped_boxes_mirror_and_flip_back():
    boxes = np.array([[10, 5, 30, 25], [0, 0, 128, 96]], np.float32)
    mirrored = flip_boxes(boxes, 128)
    assert mirrored.tolist() == [[98, 5, 118, 25], [0, 0, 128, 96]]
    assert np.array_equal(flip_boxes(mirrored, 128), boxes)


def naive_focal(y: np.ndarray, logits: np.ndarray) -> float:
    total, centres = 0.0, 0
    for target, z in zip(y.ravel(), logits.ravel()):
        p = 1 / (1 + math.exp(-z))
        if target >= 0.999:
            total += -((1 - p) ** 2) * math.log(p)
            centres += 1
        else:
            total += -((1 - target) ** 4) * p**2 * math.log(1 - p)
    return total / max(centres, 1)


def test_focal_loss_matches_a_naive_loop():
    pytest.importorskip("keras")
    from training.centres import focal_loss

    rng = np.random.default_rng(0)
    y = centre_targets([np.array([[8, 8, 40, 40]], np.float32)] * 2, 48, 64, 8)
    logits = rng.normal(0, 2, size=y.shape).astype(np.float32)
    assert float(focal_loss(y, logits)) == pytest.approx(naive_focal(y, logits), rel=1e-4)
    assert float(focal_loss(np.zeros_like(y), logits)) == pytest.approx(naive_focal(np.zeros_like(y), logits), rel=1e-4)


@pytest.mark.parametrize("regularisers", [{"dropout": 0.0}, {"dropout": 0.5, "weight_decay": 0.1}])
def test_a_tiny_run_trains_exports_and_is_read_by_the_detector(tmp_path, regularisers):
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from counter.centres import CentreDetector
    from tests.counter.toy_products import PRODUCTS
    from training.centre_export import export
    from training.centres import CentreConfig, train

    config = CentreConfig(
        input_width=128, input_height=96, scenes=6, epochs=1, batch_size=4, weights="none", **regularisers
    )
    train(config, tmp_path / "run", PRODUCTS, workers=1)
    assert all((tmp_path / "run" / f).exists() for f in ("features.npz", "head.weights.h5", "trunk.weights.h5"))
    detector = CentreDetector(export(tmp_path / "run", tmp_path / "model"))
    assert detector.info.input_width == 128 and detector.info.provenance["config"]["scenes"] == 6
    assert all(detector.info.provenance["config"][name] == value for name, value in regularisers.items())
    photo = np.random.default_rng(1).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    heat = detector.heat(photo)
    assert heat.shape == (150, 200) and np.isfinite(heat).all() and 0.0 <= heat.min() <= heat.max() <= 1.0
    with pytest.raises(FileNotFoundError, match="centres.tflite"):
        CentreDetector(tmp_path)


def test_feature_dropout_acts_in_training_only():
    pytest.importorskip("tensorflow")
    from training.centres import CentreConfig, build_head

    config = CentreConfig(input_width=64, input_height=32, width=8, dropout=0.5)
    head = build_head(config, (6, 5))
    rng = np.random.default_rng(0)
    fine, coarse = rng.normal(size=(2, 4, 8, 6)).astype(np.float32), rng.normal(size=(2, 2, 4, 5)).astype(np.float32)
    served = np.asarray(head([fine, coarse], training=False))
    np.testing.assert_array_equal(served, np.asarray(head([fine, coarse], training=False)))
    assert not np.allclose(served, np.asarray(head([fine, coarse], training=True)))
