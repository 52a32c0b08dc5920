"""Adam with a smaller learning rate for some variables (discriminative fine-tuning, Howard & Ruder 2018).

Keras 3 has one learning rate per optimizer, and scaling a variable's gradient does not scale Adam's step
(Adam divides by the gradient's own running magnitude), so the rate itself is scaled, per variable, inside
``update_step``. Everything else (slots, EMA, checkpoints through ``optimizer.variables``) is Adam's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras


class ScaledAdam(keras.optimizers.Adam):
    """Adam whose step for each variable in ``scaled`` is ``scale`` times the schedule's rate."""

    def __init__(self, learning_rate: Any, scaled: Iterable[Any] = (), scale: float = 1.0, **kwargs: Any) -> None:
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        super().__init__(learning_rate, **kwargs)
        self.scale = scale
        self._scaled_keys = {self._var_key(v) for v in scaled}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._var_key(variable) in self._scaled_keys:  # the backend's key: TF passes its own variables
            learning_rate = learning_rate * self.scale
        super().update_step(gradient, variable, learning_rate)
