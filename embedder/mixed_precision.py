"""Mixed-precision LiteRT export: the convolution trunk full-integer int8, everything after it float32.

Full-integer int8 of a GeM model loses accuracy (docs/model_card.md, Precision): GeM raises the
backbone's features to a learned power p ≈ 3 and averages them, and with int8 activations both
the features and their powers are rounded to 256 levels, so the rounding is amplified before the
projection, neck and L2 norm (all int8 too) see it. ``int8_float_head`` quantises the trunk, where
nearly all the time goes, and keeps the ops after its last convolution in float32: the pooling
(GeM or average), the Dense projection, the BN neck and the L2 normalisation.

Mechanism: TFLite's selective quantisation. The converter calibrates the float model on the
representative photos (``tf.lite.experimental.QuantizationDebugger``), and the quantiser is then
run with the output tensors of the tail's ops in ``denylisted_nodes``, so they stay float with a
DEQUANTIZE in front of them. Input uint8 and output float32 unit vectors as for every precision.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def float_tail(ops: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ops downstream of a convolution that no convolution depends on, in execution order: the
    pooling and head after the last convolution, and a pooling branch taken off earlier (two-scale GeM).

    ``ops``: a LiteRT interpreter's ``_get_ops_details()`` (``op_name``, ``inputs``, ``outputs``
    as tensor indices), which lists them in execution order.
    """
    convs = [i for i, op in enumerate(ops) if op["op_name"] in CONV_OPS]
    if not convs:
        kinds = sorted({op["op_name"] for op in ops})
        raise ValueError(f"no convolution ({', '.join(CONV_OPS)}) among the model's {len(ops)} ops: {kinds}")
    feeds_conv: set[int] = set()  # tensors some convolution's input depends on
    for op in reversed(ops):
        if op["op_name"] in CONV_OPS or feeds_conv.intersection(op["outputs"]):
            feeds_conv.update(op["inputs"])
    reached: set[int] = set()  # tensors that depend on a convolution's output
    tail = []
    for op in ops:
        if op["op_name"] in CONV_OPS:
            reached.update(op["outputs"])
        elif reached.intersection(op["inputs"]):
            reached.update(op["outputs"])
            if not feeds_conv.intersection(op["outputs"]):
                tail.append(op)
    if not tail:
        raise ValueError(f"nothing follows the last convolution (op {convs[-1]} of {len(ops)}): no head to keep float")
    return tail


def _ops_and_names(model: bytes) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    return interpreter._get_ops_details(), {t["index"]: t for t in interpreter.get_tensor_details()}


def check_float_tail(model: bytes) -> list[str]:
    """The op kinds of a converted model's float tail (``float_tail``); raises if one computes in int8."""
    ops, tensors = _ops_and_names(model)
    tail = float_tail(ops)
    quantized = [
        f"{op['op_name']} -> {tensors[i]['name']!r} ({np.dtype(tensors[i]['dtype']).name})"
        for op in tail
        for i in op["outputs"]
        if np.dtype(tensors[i]["dtype"]) != np.float32
    ]
    if quantized:
        raise ValueError(f"ops after the last convolution are not float32: {quantized}")
    return [op["op_name"] for op in tail]


def convert_int8_float_head(
    converter: tf.lite.TFLiteConverter, calibration: Callable[[], Iterable[list[np.ndarray]]]
) -> bytes:
    """``converter`` set up for full-integer int8 (``representative_dataset`` = ``calibration``) →
    the model with everything after the last convolution kept float32."""
    import tensorflow as tf

    with warnings.catch_warnings():  # the debugger runs TF's own (deprecated) interpreter; LiteRT serves
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=calibration)
        ops, tensors = _ops_and_names(debugger.calibrated_model)
        nodes = [tensors[i]["name"] for op in float_tail(ops) for i in op["outputs"]]
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
        model = bytes(debugger.get_nondebug_quantized_model())
    check_float_tail(model)
    return model
