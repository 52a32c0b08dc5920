"""Full-integer int8 simulated inside a Keras backbone, for quantisation-aware fine-tuning.

What LiteRT's converter does to the trunk (``skulens export --precision int8`` and ``int8_float_head``),
mirrored in float so that gradients can flow (straight-through estimator):

* convolution kernels: int8, symmetric, one scale per output channel (depthwise: per channel), range
  [-127, 127]. The converter folds the frozen BatchNorm into the kernel first; folding multiplies each
  output channel by one factor, and per-channel rounding is unchanged by that, so the raw kernel is
  rounded here.
* activations: int8, asymmetric, one range per tensor, calibrated as the min and max seen on the
  representative photos: every ReLU output, every Add output, and every BatchNorm output that no
  activation follows (the projections of the inverted-residual blocks).

Written here rather than with tensorflow-model-optimization, which does not support Keras 3.
The layers are patched in place (``simulate_int8`` returns the undo), so the model saved afterwards is
an ordinary float model that exports exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

ACTIVATION_LAYERS = ("ReLU", "Activation")
CONV_LAYERS = ("Conv2D", "DepthwiseConv2D")


@dataclass(frozen=True)
class Range:
    low: float
    high: float


def fake_quant_kernel(kernel: tf.Tensor, depthwise: bool) -> tf.Tensor:
    """``kernel`` rounded to int8 per output channel (symmetric, [-127, 127]); gradient passes straight."""
    import tensorflow as tf

    shape = tf.shape(kernel)
    if depthwise:  # (h, w, channels, 1): the channel axis is 2; the same memory order as (h, w, 1, channels)
        kernel = tf.reshape(kernel, (shape[0], shape[1], 1, shape[2] * shape[3]))
    bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=(0, 1, 2)), 1e-8))
    rounded = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, -bound, bound, num_bits=8, narrow_range=True
    )
    return tf.reshape(rounded, shape) if depthwise else rounded


def fake_quant_activation(x: tf.Tensor, bounds: Range) -> tf.Tensor:
    """``x`` on the 256-level grid of ``bounds`` (nudged so zero is exact, as the converter does)."""
    import tensorflow as tf

    low, high = min(bounds.low, 0.0), max(bounds.high, 0.0)
    if high - low < 1e-8:
        return x
    return tf.quantization.fake_quant_with_min_max_args(x, min=low, max=high, num_bits=8, narrow_range=False)


def quantised_outputs(network: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``network`` (the applications model inside the backbone) whose outputs the int8
    model stores as int8 tensors: activations, additions, and BatchNorms not followed by an activation."""
    chosen = []
    for layer in network.layers:
        kind = type(layer).__name__
        if kind in ACTIVATION_LAYERS or kind == "Add":
            chosen.append(layer)
        elif kind == "BatchNormalization":
            consumers = [type(node.operation).__name__ for node in layer._outbound_nodes]
            if not consumers or not all(c in ACTIVATION_LAYERS for c in consumers):
                chosen.append(layer)
    return chosen


def _patch(layers: Iterable[keras.layers.Layer], wrap: Callable[[Any, Any], Any]) -> Callable[[], None]:
    """Replace each layer's ``call`` by ``wrap(layer, original_call)``; return the undo."""
    patched = []
    for layer in layers:
        patched.append((layer, layer.__dict__.get("call")))
        object.__setattr__(layer, "call", wrap(layer, layer.call))

    def undo() -> None:
        for layer, before in patched:
            if before is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", before)

    return undo


def record_ranges(
    network: keras.Model, model: keras.Model, pixels: np.ndarray, batch_size: int = 32
) -> dict[str, Range]:
    """Min and max of each quantised output of ``network`` while ``model`` embeds ``pixels`` (eagerly)."""
    seen: dict[str, list[float]] = {}

    def recorder(layer: Any, call: Callable[..., Any]) -> Callable[..., Any]:
        def recording(*args: Any, **kwargs: Any) -> Any:
            out = call(*args, **kwargs)
            values = np.asarray(out)
            low, high = seen.get(layer.name, [np.inf, -np.inf])
            seen[layer.name] = [min(low, float(values.min())), max(high, float(values.max()))]
            return out

        return recording

    undo = _patch(quantised_outputs(network), recorder)
    try:
        for start in range(0, len(pixels), batch_size):
            model(np.asarray(pixels[start : start + batch_size], dtype=np.float32), training=False)
    finally:
        undo()
    return {name: Range(low, high) for name, (low, high) in seen.items()}


def _conv_call(layer: Any, call: Callable[..., Any]) -> Callable[..., Any]:
    from keras import ops

    if layer.use_bias or layer.activation.__name__ != "linear":
        raise ValueError(f"{layer.name!r}: int8 simulation expects a convolution without bias or activation")
    depthwise = type(layer).__name__ == "DepthwiseConv2D"

    def quantised(inputs: Any) -> Any:
        kernel = fake_quant_kernel(layer.kernel, depthwise)
        if depthwise:
            return ops.depthwise_conv(
                inputs,
                kernel,
                strides=layer.strides,
                padding=layer.padding,
                dilation_rate=layer.dilation_rate,
                data_format=layer.data_format,
            )
        return layer.convolution_op(inputs, kernel)

    return quantised


def simulate_int8(network: keras.Model, ranges: dict[str, Range]) -> Callable[[], None]:
    """Patch ``network``'s convolutions and quantised outputs to compute as int8 would; return the undo."""
    missing = [layer.name for layer in quantised_outputs(network) if layer.name not in ranges]
    if missing:
        raise ValueError(f"no calibrated range for {len(missing)} outputs, e.g. {missing[:3]}")

    def activation(layer: Any, call: Callable[..., Any]) -> Callable[..., Any]:
        bounds = ranges[layer.name]
        return lambda *args, **kwargs: fake_quant_activation(call(*args, **kwargs), bounds)

    convs = [layer for layer in network.layers if type(layer).__name__ in CONV_LAYERS]
    undo_convs = _patch(convs, _conv_call)
    undo_outputs = _patch(quantised_outputs(network), activation)

    def undo() -> None:
        undo_outputs()
        undo_convs()

    return undo
