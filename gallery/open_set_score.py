"""The open-set decision score: how sure an answer is, on the scale its threshold is set on.

    score = best similarity − beta × lookalike(answer SKU) − gamma × runner-up similarity

* ``lookalike`` (``gallery.lookalike``): the cosine between the answer SKU's reference centroid and the
  nearest other enrolled SKU's; a gallery-side cue, the same for every query answered with that SKU.
* ``runner_up``: the best similarity of the *second* SKU among the query's matches; a query-side cue, the
  ratio test of local-feature matching: an answer whose next-best SKU sits nearly as close is less sure.

Both are clipped at 0 (a cue never rewards) and a missing runner-up (one SKU enrolled) counts 0. ``beta``
and ``gamma`` are fitted with the threshold on the fold protocol (``training.fold_calibration``) and stored
in ``model.json``; both 0 is the plain best similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the runner-up similarity of a query with a single SKU enrolled: nothing to weigh it against
NO_RUNNER_UP = 0.0

#: each cue, as the fold protocol's results name it, and the weight of ``OpenSetScore`` that multiplies it
CUE_WEIGHTS = {"lookalike": "beta", "runner_up": "gamma"}


def penalised(similarity: float | np.ndarray, cue: float | np.ndarray, weight: float) -> np.ndarray:
    """``similarity`` less ``weight`` × ``cue`` clipped at 0 (a cue never rewards): one term of the score."""
    return np.asarray(similarity, np.float64) - weight * np.maximum(np.asarray(cue, np.float64), 0.0)


def _weight(name: str, value: object) -> float:
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0 <= value < 10):
        raise ValueError(f"{name} must be a number from 0 to 10, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OpenSetScore:
    """The weights of the decision score's two cues (both 0: the plain best similarity)."""

    beta: float = 0.0  # × the answer SKU's lookalike
    gamma: float = 0.0  # × the runner-up SKU's similarity

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _weight("lookalike_beta", self.beta))
        object.__setattr__(self, "gamma", _weight("runner_up_gamma", self.gamma))

    @property
    def name(self) -> str:
        """Part of a stored threshold's key (a threshold belongs to one score): "" for the plain similarity."""
        parts = [f"lookalike-{self.beta:.6g}"] if self.beta else []
        parts += [f"runner-up-{self.gamma:.6g}"] if self.gamma else []
        return "+".join(parts)

    @property
    def label(self) -> str:
        """What an operator is shown: the name, or "similarity" for the plain best similarity."""
        return self.name or "similarity"

    @property
    def uses_lookalike(self) -> bool:
        return self.beta > 0

    def of(
        self,
        similarity: float | np.ndarray,
        lookalike: float | np.ndarray = 0.0,
        runner_up: float | np.ndarray = NO_RUNNER_UP,
    ) -> np.ndarray:
        """The decision score of answers with these cues (scalars or equal-length arrays)."""
        return penalised(penalised(similarity, lookalike, self.beta), runner_up, self.gamma)


@dataclass(frozen=True)
class TableDecisions:
    """Each query's answer and cues, read from a ``(queries, skus)`` table of best similarities per SKU."""

    answer: np.ndarray  # column of the best SKU
    similarity: np.ndarray  # its similarity
    runner_up: np.ndarray  # the second SKU's (``NO_RUNNER_UP`` with one SKU)

    @staticmethod
    def of(per_sku: np.ndarray) -> TableDecisions:
        """From ``evaluation.metrics.best_score_per_sku``'s table (``-inf`` for a SKU with no reference)."""
        table = np.asarray(per_sku, np.float64)
        answer = table.argmax(axis=1)
        rows = np.arange(len(table))
        if table.shape[1] > 1:
            second = np.partition(table, -2, axis=1)[:, -2]
        else:
            second = np.full(len(table), -np.inf)
        return TableDecisions(answer, table[rows, answer], np.where(np.isfinite(second), second, NO_RUNNER_UP))

    def scores(self, score: OpenSetScore, lookalikes: np.ndarray | None = None) -> np.ndarray:
        """The decision score of every query; ``lookalikes`` per SKU column (needed when ``score.beta``)."""
        if score.beta and lookalikes is None:
            raise ValueError(
                f"a lookalike beta ({score.beta!r}) needs each SKU's lookalike (gallery.lookalike.label_lookalikes)"
            )
        look = np.asarray(lookalikes)[self.answer] if lookalikes is not None else 0.0
        return score.of(self.similarity, look, self.runner_up)
