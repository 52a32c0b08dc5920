"""The trained item-centre model (``training/centres.py``) as the LiteRT file and JSON that ``counter/centres.py``
reads: float32, uint8 RGB in, the sigmoid heatmap out; the provenance written beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.centres import CentreConfig, build_head, build_trunk

if TYPE_CHECKING:
    import keras


def full_model(config: CentreConfig, out: Path) -> keras.Model:
    """The trunk and head trained in ``out``, and a sigmoid: raw RGB in, the heatmap out."""
    import keras

    trunk = build_trunk(config)
    trunk.load_weights(out / "trunk.weights.h5")
    head = build_head(config, (int(trunk.outputs[0].shape[-1]), int(trunk.outputs[1].shape[-1])))
    head.load_weights(out / "head.weights.h5")
    pixels = keras.Input((config.input_height, config.input_width, 3))
    return keras.Model(pixels, keras.ops.sigmoid(head(trunk(pixels))), name="centres")


def export(out: Path, directory: Path) -> Path:
    """The trained model in ``out`` as ``directory/centres.tflite`` (float32, uint8 input) + ``centres.json``."""
    import tensorflow as tf

    from counter.centres import INFO_FILE, MODEL_FILE
    from embedder.export import saved_model_tflite

    trained = json.loads((out / "training.json").read_text())
    config = CentreConfig(**trained["config"])
    model = full_model(config, out)

    def serve(pixels: tf.Tensor) -> tf.Tensor:
        return model(tf.cast(pixels, tf.float32), training=False)

    spec = tf.TensorSpec([1, config.input_height, config.input_width, 3], tf.uint8, name="pixels")
    converted = saved_model_tflite(model, serve, spec)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(converted)
    info = {
        "input_width": config.input_width,
        "input_height": config.input_height,
        "stride": config.stride,
        "threshold": config.threshold,
        "window": config.window,
        "valley": config.valley,
        "provenance": {
            "trained": f"training/centres.py, {config.scenes} synthetic scenes (seeds {config.first_seed}-"
            f"{config.first_seed + config.scenes - 1}), the {config.products} catalogue products",
            "config": trained["config"],
            "final_loss": {k: v[-1] for k, v in trained["loss"].items()},
            **({"note": trained["note"]} if "note" in trained else {}),
            "exported": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return directory
