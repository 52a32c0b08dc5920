"""The backbones skulens can embed with, and how their weights are found.

Each backbone's input scaling lives *inside* the built model, so every skulens
model takes raw RGB pixels 0..255 and a saved model needs no outside knowledge.
Needs TensorFlow/Keras (the ``train`` extra).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

WEIGHTS_ENV = "SKULENS_BACKBONE_WEIGHTS"
POOLINGS = ("avg", "gem", "gem_multiscale")  # build_backbone says what each is


class WeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for and could not be had."""


@dataclass(frozen=True)
class Backbone:
    name: str
    keras_name: str  # attribute of keras.applications
    feature_dim: int
    builtin_rescaling: bool  # True: model takes 0..255 itself; False: we rescale to [-1, 1]
    minimalistic: bool = False  # MobileNetV3 without squeeze-excite and hard-swish (ReLU, 3x3 kernels)
    # For ``gem_multiscale``: the layer whose *input* is the stride-16 feature map tapped beside the last one
    # (the expanded, activated map of the block that steps down to stride 32), and its channels.
    mid_tap: str | None = None
    mid_dim: int = 0


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v3_large": Backbone(
        "mobilenet_v3_large", "MobileNetV3Large", 960, True, mid_tap="expanded_conv_12_depthwise_pad", mid_dim=672
    ),
    # ReLU and no squeeze-excite: quantises well to int8 (../shared/weights/README.md has ImageNet weights).
    "mobilenet_v3_large_minimalistic": Backbone(
        "mobilenet_v3_large_minimalistic",
        "MobileNetV3Large",
        960,
        True,
        minimalistic=True,
        mid_tap="expanded_conv_12_depthwise_pad",
        mid_dim=672,
    ),
    "mobilenet_v3_small": Backbone(
        "mobilenet_v3_small", "MobileNetV3Small", 576, True, mid_tap="expanded_conv_8_depthwise_pad", mid_dim=288
    ),
    "mobilenet_v2": Backbone("mobilenet_v2", "MobileNetV2", 1280, False, mid_tap="block_13_pad", mid_dim=576),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None


def pooled_feature_dim(name: str, pooling: str) -> int:
    """Width of the backbone's pooled features: the last map's channels, plus the stride-16 map's for
    ``gem_multiscale``."""
    spec = get_backbone(name)
    if pooling != "gem_multiscale":
        return spec.feature_dim
    _mid_tap(spec)  # raises for a backbone without one
    return spec.feature_dim + spec.mid_dim


def _mid_tap(spec: Backbone) -> str:
    if spec.mid_tap is None:
        raise ValueError(f"backbone {spec.name!r} has no stride-16 tap for pooling 'gem_multiscale'")
    return spec.mid_tap


def describe_weights(weights: str | None) -> str:
    """A short, human-readable origin for the model card."""
    if weights is None or weights == "none":
        return "random initialisation"
    if weights == "imagenet":
        return "ImageNet (keras.applications download)"
    return f"local file {os.path.basename(weights)}"


def build_backbone(
    name: str, input_size: int, weights: str | None, pooling: str = "avg", train_batchnorm: bool = False
) -> keras.Model:
    """A ``keras.Model`` from 0..255 RGB to pooled features (``pooled_feature_dim(name, pooling)`` wide).

    ``pooling``: ``"avg"`` (global average), ``"gem"`` (generalised mean with a learned
    exponent, ``embedder.pooling``) or ``"gem_multiscale"``: GeM of the last map concatenated with
    GeM of the stride-16 map (``Backbone.mid_tap``), whose finer grid and earlier features keep
    detail (a label's print, a fruit's skin) that the last map has pooled away.

    ``train_batchnorm``: the ImageNet network is called in the mode of the call (its BatchNorm layers use
    batch statistics while training, if they are made trainable) instead of always in inference mode.

    ``weights``: ``"imagenet"`` (Keras' standard download into its cache),
    a path to a ``.weights.h5`` file for this backbone without its top, or
    ``None``/``"none"`` for random initialisation.
    """
    import keras

    from embedder.pooling import GeMPooling

    spec = get_backbone(name)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
    if weights == "none":
        weights = None
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"backbone weights file {weights!r} does not exist")
    constructor = getattr(keras.applications, spec.keras_name)
    kwargs: dict[str, object] = {
        "input_shape": (input_size, input_size, 3),
        "include_top": False,
        "pooling": "avg" if pooling == "avg" else None,
        "weights": weights,
    }
    if spec.builtin_rescaling:
        kwargs["include_preprocessing"] = True
    if spec.minimalistic:
        kwargs["minimalistic"] = True
    try:
        base = constructor(**kwargs)
    except Exception as exc:
        if weights != "imagenet":
            raise
        raise WeightsUnavailable(
            f"could not get ImageNet weights for {name} ({exc.__class__.__name__}: {exc}). "
            f"Either give a local weights file (--weights PATH or {WEIGHTS_ENV}=PATH; "
            f"see ../shared/weights/README.md), or train from random initialisation (--weights none)."
        ) from exc
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = inputs
    if not spec.builtin_rescaling:
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(x)
    # Frozen BatchNorm: the ImageNet network is called in inference mode. Keras 3 lets an outer call's training=True
    # override that, so fine-tuning keeps it frozen by making the BatchNorm layers non-trainable
    # (training.finetune.unfreeze): Keras' BatchNorm uses batch statistics only when it is trainable.
    call_mode: dict[str, bool] = {} if train_batchnorm else {"training": False}
    if pooling == "gem_multiscale":
        mid, last = _two_scales(base, spec)(x, **call_mode)
        features = keras.layers.Concatenate(name="multiscale_features")(
            [GeMPooling(name="gem_pooling")(last), GeMPooling(name="gem_pooling_mid")(mid)]
        )
        return keras.Model(inputs, features, name=f"backbone_{name}")
    features = base(x, **call_mode)
    if pooling == "gem":
        features = GeMPooling(name="gem_pooling")(features)
    return keras.Model(inputs, features, name=f"backbone_{name}")


def _two_scales(base: keras.Model, spec: Backbone) -> keras.Model:
    """``base`` with two outputs, the stride-16 map and the last one (the same layers, so the same weights)."""
    import keras

    mid = base.get_layer(_mid_tap(spec)).input
    if mid.shape[-1] != spec.mid_dim:
        raise ValueError(f"{spec.name}: {spec.mid_tap!r} takes {mid.shape[-1]} channels, expected {spec.mid_dim}")
    return keras.Model(base.inputs, [mid, base.outputs[0]], name=base.name)
