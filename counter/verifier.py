"""A learned judge of "one item or several" for the proposed changes (issue 12, round 5).

Round 4's rule (``counter/hypotheses.py``) weighs two recognition cues by hand. The verifier is a logistic
regression per kind of change (split, merge) over ``counter/verifier_features.py``'s features: recognition
and geometry. A change is taken when its score (the regression's log-odds that the change makes the scene's
boxes more right) exceeds its kind's threshold; the most confident first, never two changes to one part, as
round 4 does. The score is one dot product per change.

The weights are data (``verifier_weights.json``, with their provenance: the seeds, the gallery, the date),
fitted by ``bench/counter_verifier.py`` on the tuning seeds 1000-1399 only (the solver is
``evaluation.calibrate.ridge_logistic``, which this package may not import: only the fitted numbers live here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from counter.hypotheses import Change
from counter.verifier_features import NAMES, Shapes, features

WEIGHTS = Path(__file__).with_name("verifier_weights.json")


@dataclass(frozen=True)
class Verifier:
    split: tuple[float, ...]  # intercept, then one weight per feature (``NAMES``), on the features' own scale
    merge: tuple[float, ...]
    split_threshold: float = 0.0  # a change is taken when its log-odds exceed its kind's threshold
    merge_threshold: float = 0.0
    provenance: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for weights in (self.split, self.merge):
            if len(weights) != len(NAMES) + 1:
                raise ValueError(f"a verifier needs {len(NAMES) + 1} weights (intercept + {NAMES}), got {len(weights)}")

    def score(self, vector: np.ndarray, split: bool) -> float:
        """Log-odds that the change is right, less its kind's threshold: positive when it is worth taking."""
        weights, threshold = (self.split, self.split_threshold) if split else (self.merge, self.merge_threshold)
        return float(weights[0] + np.dot(weights[1:], vector)) - threshold

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Verifier:
        data = json.loads(path.read_text())
        return cls(
            tuple(data["split"]),
            tuple(data["merge"]),
            float(data["split_threshold"]),
            float(data["merge_threshold"]),
            data.get("provenance", {}),
        )

    def to_json(self) -> str:
        data = {
            "features": list(NAMES),
            "split": list(self.split),
            "merge": list(self.merge),
            "split_threshold": self.split_threshold,
            "merge_threshold": self.merge_threshold,
            "provenance": self.provenance,
        }
        return json.dumps(data, indent=1) + "\n"


def choose_learned(
    changes: list[Change], shapes: list[Shapes], sims: np.ndarray, verifier: Verifier, item_area: float
) -> list[Change]:
    """The changes the verifier takes: positive score, the most confident first, none replacing a part replaced
    already (``sims``: a row of per-product similarities for each crop index the changes name)."""
    values = []
    for change, shape in zip(changes, shapes, strict=True):
        split = len(change.into) > len(change.replaces)
        values.append(verifier.score(features(change, shape, sims, item_area).vector(), split))
    return take(changes, values)


def take(changes: list[Change], values: list[float]) -> list[Change]:
    """The changes of positive value, the highest first, none replacing a part replaced already."""
    taken: list[Change] = []
    used: set[int] = set()
    for value, i in sorted(((v, i) for i, v in enumerate(values)), key=lambda t: (-t[0], t[1])):
        if value <= 0:
            break
        if used.isdisjoint(changes[i].replaces):
            taken.append(changes[i])
            used.update(changes[i].replaces)
    return taken
