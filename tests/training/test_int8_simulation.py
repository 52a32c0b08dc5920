"""int8 simulated in a Keras network (training/int8_simulation.py), checked against NumPy spelled out."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training.int8_simulation import (  # noqa: E402
    Range,
    fake_quant_activation,
    fake_quant_kernel,
    quantised_outputs,
    record_ranges,
    simulate_int8,
)
from training.qat import cosine_distance  # noqa: E402


def round_per_channel(kernel: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric int8 per channel along ``axis``, [-127, 127], as LiteRT stores convolution weights."""
    other = tuple(a for a in range(kernel.ndim) if a != axis)
    scale = np.abs(kernel).max(axis=other, keepdims=True) / 127.0
    return np.round(kernel / scale) * scale


def round_per_tensor(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Asymmetric uint8 grid over [low, high] with zero exact (TF's nudging), values clamped; halves round up."""
    scale = (high - low) / 255.0
    zero = np.floor(-low / scale + 0.5)
    low, high = -zero * scale, (255 - zero) * scale
    return np.floor((np.clip(x, low, high) - low) / scale + 0.5) * scale + low


def tiny_network(seed: int = 0) -> keras.Model:
    """Conv → BN → ReLU → depthwise → BN → ReLU → project conv → BN, added to the first ReLU's output."""
    init = keras.initializers.GlorotUniform(seed=seed)
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer=init, name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    first = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, depthwise_initializer=init, name="dw")(first)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(name="relu_1")(x)
    x = keras.layers.Conv2D(4, 1, use_bias=False, kernel_initializer=init, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.Add(name="add")([first, x])
    return keras.Model(inputs, x, name="tiny")


def test_kernels_round_per_output_channel_as_numpy_does():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(3, 3, 5, 7)).astype(np.float32) * rng.uniform(0.01, 2, size=7).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(fake_quant_kernel(conv, depthwise=False)), round_per_channel(conv, 3), atol=1e-6
    )
    depthwise = rng.normal(size=(3, 3, 6, 1)).astype(np.float32) * rng.uniform(0.01, 2, size=(1, 1, 6, 1))
    depthwise = depthwise.astype(np.float32)
    got = np.asarray(fake_quant_kernel(depthwise, depthwise=True))
    np.testing.assert_allclose(got, round_per_channel(depthwise, 2), atol=1e-6)
    assert len(np.unique(got[..., 0, 0])) <= 255  # one scale per channel, not one for the tensor


def test_activations_round_on_the_calibrated_grid_and_clamp_outside_it():
    x = (np.linspace(-3, 7, 1001) + 0.0012345).astype(np.float32)  # no value exactly halfway between two levels
    got = np.asarray(fake_quant_activation(x, Range(-2.0, 6.0)))
    np.testing.assert_allclose(got, round_per_tensor(x, -2.0, 6.0), atol=1e-5)
    step = 8.0 / 255
    assert got.max() <= 6.0 + step and got.min() >= -2.0 - step
    assert len(np.unique(got)) <= 256


def test_quantised_outputs_skip_batchnorms_an_activation_follows():
    names = [layer.name for layer in quantised_outputs(tiny_network())]
    assert names == ["relu", "relu_1", "project_bn", "add"]


def test_recorded_ranges_are_the_min_and_max_of_each_output():
    network = tiny_network()
    pixels = np.random.default_rng(1).uniform(0, 1, size=(10, 8, 8, 3)).astype(np.float32)
    ranges = record_ranges(network, network, pixels, batch_size=4)
    probe = keras.Model(network.input, [network.get_layer(n).output for n in ("relu", "project_bn", "add")])
    for name, output in zip(("relu", "project_bn", "add"), probe(pixels)):
        values = np.asarray(output)
        assert ranges[name] == pytest.approx(Range(float(values.min()), float(values.max())), abs=1e-6)


def test_simulated_network_matches_numpy_int8_and_the_undo_restores_float():
    network = tiny_network()
    pixels = np.random.default_rng(2).uniform(0, 1, size=(6, 8, 8, 3)).astype(np.float32)
    before = np.asarray(network(pixels))
    ranges = record_ranges(network, network, pixels)
    undo = simulate_int8(network, ranges)
    simulated = np.asarray(network(pixels))
    undo()
    np.testing.assert_array_equal(np.asarray(network(pixels)), before)
    assert not np.allclose(simulated, before, atol=1e-7)  # the simulation changed something

    # the same network by hand: kernels rounded per channel, every quantised output rounded on its grid
    def bn(name, x):
        layer = network.get_layer(name)
        return np.asarray(layer(x, training=False))

    def grid(name, x):
        return round_per_tensor(x, min(ranges[name].low, 0), max(ranges[name].high, 0)).astype(np.float32)

    def conv(name, x, axis):
        layer = network.get_layer(name)
        kernel = round_per_channel(np.asarray(layer.kernel), axis).astype(np.float32)
        x = np.asarray(x, dtype=np.float32)
        if axis == 2:
            return np.asarray(keras.ops.depthwise_conv(x, kernel, padding="same"))
        return np.asarray(keras.ops.conv(x, kernel, padding=layer.padding))

    first = grid("relu", np.maximum(bn("conv_bn", conv("conv", pixels, 3)), 0))
    x = grid("relu_1", np.maximum(bn("dw_bn", conv("dw", first, 2)), 0))
    x = grid("project_bn", bn("project_bn", conv("project", x, 3)))
    np.testing.assert_allclose(simulated, grid("add", first + x), atol=1e-4)


def test_simulation_refuses_a_network_without_calibrated_ranges():
    with pytest.raises(ValueError, match="no calibrated range for 1 outputs"):
        simulate_int8(tiny_network(), {"relu": Range(0, 1), "relu_1": Range(0, 1), "project_bn": Range(-1, 1)})


def test_cosine_distance_of_unit_vectors():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert cosine_distance(a, a) == 0.0
    assert cosine_distance(a, np.array([[0.0, 1.0], [0.0, 1.0]])) == pytest.approx(0.5)


def test_a_traced_inference_function_sees_the_patch_only_after_it_is_forgotten():
    """``embed_pixels`` keeps one traced function per model; patched layers are baked into a trace."""
    from training.features import forget_inference, inference_fn

    network = tiny_network()
    pixels = np.random.default_rng(3).integers(0, 255, size=(4, 8, 8, 3)).astype(np.uint8)
    before = np.asarray(inference_fn(network)(pixels))
    undo = simulate_int8(network, record_ranges(network, network, pixels.astype(np.float32)))
    np.testing.assert_array_equal(np.asarray(inference_fn(network)(pixels)), before)  # the old trace
    forget_inference(network)
    simulated = np.asarray(inference_fn(network)(pixels))
    assert not np.allclose(simulated, before, atol=1e-7)
    undo()
    forget_inference(network)
    np.testing.assert_array_equal(np.asarray(inference_fn(network)(pixels)), before)
