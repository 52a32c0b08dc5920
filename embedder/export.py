"""Keras embedding model → LiteRT (TFLite) serving artifact. Needs TensorFlow.

The exported graph takes **uint8** RGB pixels ``(batch, size, size, 3)`` with a
dynamic batch, casts inside, and returns unit vectors: serving does no float
conversion in NumPy.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedder.artifact import ModelArtifact, write_artifact

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "float16", "dynamic_int8", "int8", "int8_float_head")
CALIBRATED = ("int8", "int8_float_head")  # need representative photos to calibrate int8 activations


def to_tflite(
    model: keras.Model,
    input_size: int,
    precision: str = "float32",
    representative: Sequence[np.ndarray] | np.ndarray | None = None,
) -> bytes:
    """``int8``: full-integer weights and activations, calibrated on ``representative`` (uint8 pixels
    ``(n, size, size, 3)``, a few hundred training photos); uint8 input and float32 output as always.
    ``int8_float_head``: the same, but the pooling, projection, neck and L2 norm (every op downstream
    of a convolution that no convolution depends on) kept float32 (``embedder.mixed_precision``)."""
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision in CALIBRATED and (representative is None or len(representative) == 0):
        raise ValueError(
            f"{precision} export needs representative pixels (a few hundred photos) to calibrate activations"
        )

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embeddings": model(tf.cast(images, tf.float32), training=False)}

    def convert(converter: Any) -> bytes:
        if precision == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif precision == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif precision in CALIBRATED:
            assert representative is not None  # checked above
            photos = representative

            def calibration() -> Iterator[list[np.ndarray]]:
                return ([np.asarray(p[None], np.uint8)] for p in photos)

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.float32
            if precision == "int8_float_head":
                from embedder.mixed_precision import convert_int8_float_head

                return convert_int8_float_head(converter, calibration)
        return bytes(converter.convert())

    spec = tf.TensorSpec([None, input_size, input_size, 3], tf.uint8, name="images")
    return saved_model_tflite(model, serve, spec, convert)


def saved_model_tflite(
    model: keras.Model, serve: Callable[[Any], Any], spec: Any, convert: Callable[[Any], bytes] | None = None
) -> bytes:
    """``model`` behind the endpoint ``serve`` (its input ``spec``, a ``tf.TensorSpec``) as LiteRT bytes: written
    as a SavedModel first, so that its variables are frozen right (a Keras 3 model's concrete function converted
    directly gave NaNs), then converted by ``convert(converter)`` (default: float32 as it is)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[spec])
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved_model")
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return convert(converter) if convert else bytes(converter.convert())


def export_model(
    model: keras.Model,
    directory: str | os.PathLike[str],
    backbone: str,
    input_size: int,
    embedding_dim: int,
    weights_origin: str,
    trained: bool,
    precision: str = "float32",
    threshold: float | None = None,
    representative: Sequence[np.ndarray] | np.ndarray | None = None,
    **extra: Any,
) -> ModelArtifact:
    """Convert and write a model folder; returns the artifact with its content-hash version."""
    tflite_bytes = to_tflite(model, input_size, precision, representative)
    artifact = write_artifact(
        directory,
        tflite_bytes,
        backbone=backbone,
        embedding_dim=embedding_dim,
        input_size=input_size,
        weights_origin=weights_origin,
        trained=trained,
        threshold=threshold,
        precision=precision,
        extra=extra,
    )
    logger.info("exported %s model %s to %s (%d bytes)", precision, artifact.version, directory, len(tflite_bytes))
    return artifact
