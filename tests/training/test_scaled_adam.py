"""ScaledAdam against Adam's first step spelled out: lr * g / (|g| + eps) per weight, times the scale."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import TrainConfig

keras = pytest.importorskip("keras")


def first_adam_step(gradient: np.ndarray, rate: float, epsilon: float = 1e-7) -> np.ndarray:
    m = 0.1 * gradient  # (1 - beta1) g
    v = 0.001 * gradient**2  # (1 - beta2) g^2
    corrected = rate * np.sqrt(1 - 0.999) / (1 - 0.9)  # Adam's bias correction at step 1
    return corrected * m / (np.sqrt(v) + epsilon)


def test_scaled_variables_step_at_the_scaled_rate_and_the_rest_at_the_full_rate():
    from training.scaled_adam import ScaledAdam

    start = np.array([1.0, -1.0, 0.5], np.float32)
    backbone, head = keras.Variable(start.copy()), keras.Variable(start.copy())
    gradient = np.array([0.3, -2.0, 1e-3], np.float32)
    optimizer = ScaledAdam(0.01, scaled=[backbone], scale=0.25)
    optimizer.apply_gradients([(gradient, backbone), (gradient, head)])
    np.testing.assert_allclose(start - head.numpy(), first_adam_step(gradient, 0.01), rtol=1e-4)
    np.testing.assert_allclose(start - backbone.numpy(), first_adam_step(gradient, 0.01 * 0.25), rtol=1e-4)


def test_scale_one_is_plain_adam():
    from training.scaled_adam import ScaledAdam

    a, b = keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(4, np.float32))
    gradient = np.array([0.5, -0.1, 2.0, 0.0], np.float32)
    ScaledAdam(0.05, scaled=[a], scale=1.0).apply_gradients([(gradient, a)])
    keras.optimizers.Adam(0.05).apply_gradients([(gradient, b)])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.5])
def test_a_scale_outside_zero_to_one_is_refused_with_the_value(scale):
    from training.scaled_adam import ScaledAdam

    with pytest.raises(ValueError, match=repr(scale)):
        ScaledAdam(0.01, scale=scale)
    with pytest.raises(ValueError, match=f"backbone_lr_scale.*{scale!r}"):
        TrainConfig(schedule="finetune", backbone_lr_scale=scale)


def test_the_backbone_rate_needs_the_finetune_schedule():
    with pytest.raises(ValueError, match="two_stage"):
        TrainConfig(schedule="two_stage", backbone_lr_scale=0.5)
    assert TrainConfig.from_dict({"schedule": "finetune", "backbone_lr_scale": 0.25}).backbone_lr_scale == 0.25
