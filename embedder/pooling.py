"""Generalised-mean (GeM) pooling: ``(mean(x ** p)) ** (1 / p)`` over the spatial grid, ``p`` learned.

p = 1 is average pooling and p → ∞ max pooling; the re-identification and image-retrieval
literature (Radenović et al. 2018) found a learned p ≈ 3 gives better retrieval features than
either, because a product's most distinctive parts (a logo, a label) weigh more than the
background around it. Needs Keras (the ``train`` extra); importing this module registers the
layer, so a saved ``model.keras`` that uses it loads again.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="skulens")
class GeMPooling(keras.layers.Layer):  # type: ignore[misc]  # Keras ships no types
    """``(n, h, w, c)`` → ``(n, c)``; one trainable exponent ``p`` shared by all channels."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if p < 1.0:
            raise ValueError(f"GeM exponent p must be >= 1 (1 is average pooling), got {p!r}")
        self.initial_p, self.eps = float(p), float(eps)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.p = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_p), name="p", trainable=True
        )

    def call(self, inputs: Any) -> Any:
        p = ops.maximum(self.p, 1.0)  # a step must not take it below average pooling
        powered = ops.power(ops.maximum(inputs, self.eps), p)
        return ops.power(ops.mean(powered, axis=(1, 2)), 1.0 / p)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "p": self.initial_p, "eps": self.eps}
