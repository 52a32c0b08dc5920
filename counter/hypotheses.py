"""The recogniser deciding how many items a blob holds: pure logic over candidate changes and their scores.

A blob's parts, as the classical splitter found them, are the **baseline**; a ``Change`` proposes to replace
some of them (``replaces``) by other parts (``into``): one part split in two, two neighbouring parts merged
into one. Every part, baseline or proposed, is one crop of the photo; the recogniser gives each crop its
similarity to each product of the gallery (a row of ``sims``: the best match per product).

The **evidence for the finer cut** (the one with more parts) is how much better its parts are recognised than
the coarser cut's (mean best similarity), plus, when the coarser cut is one crop, ``coherence`` times how much
less the finer parts look like the product that crop was recognised as than like their own best product (two
halves of one carton both look like that carton; two products pressed together each look like itself). A
split is taken when the evidence exceeds ``split_margin`` per item added, a merge when the evidence against
the finer cut exceeds ``merge_margin`` per item removed; the most gainful first, none replacing a part
already replaced. No change: the baseline.

``choose`` needs only indices and similarities, so it is tested with tiny arrays
(tests/counter/test_recognised.py); the margins are fitted on the tuning seeds 1000-1399 only with a gallery
of store photos (bench/README.md, "Counter segmenter, round 4").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from counter.verifier import Verifier


@dataclass(frozen=True)
class Change:
    """Replace the crops ``replaces`` (baseline parts of one blob) by the crops ``into``."""

    replaces: tuple[int, ...]
    into: tuple[int, ...]


@dataclass(frozen=True)
class DecisionConfig:
    split_margin: float = 0.15  # a split's evidence must exceed this per item it adds ...
    merge_margin: float = 0.0  # ... a merge's evidence against the parts this per item it removes
    coherence: float = 0.75  # weight of "the finer parts are recognised as other products than the whole"
    verifier: Verifier | None = None  # set: the learned verifier (``counter/verifier.py``) decides instead


def evidence(change: Change, sims: np.ndarray, config: DecisionConfig) -> float:
    """How much better the finer of the change's two cuts is recognised than the coarser (``sims``: one row of
    per-product similarities per crop)."""
    split = len(change.into) > len(change.replaces)
    fine, coarse = (change.into, change.replaces) if split else (change.replaces, change.into)
    best = sims.max(axis=1)
    better = float(best[list(fine)].mean() - best[list(coarse)].mean())
    if len(coarse) != 1:
        return better
    product = int(np.argmax(sims[coarse[0]]))
    alike = float(np.mean([sims[f, product] - best[f] for f in fine]))  # <= 0: 0 when each part is that product
    return better - config.coherence * alike


def gain(change: Change, sims: np.ndarray, config: DecisionConfig) -> float:
    """The change's evidence less its margin: positive when it is worth taking."""
    added = len(change.into) - len(change.replaces)
    found = evidence(change, sims, config)
    return found - config.split_margin * added if added > 0 else -found - config.merge_margin * -added


def choose(changes: list[Change], sims: np.ndarray, config: DecisionConfig) -> list[Change]:
    """The changes taken: those of positive gain, the most gainful first, none replacing a part replaced already."""
    ranked = sorted(((gain(c, sims, config), i) for i, c in enumerate(changes)), key=lambda t: (-t[0], t[1]))
    taken: list[Change] = []
    used: set[int] = set()
    for value, i in ranked:
        change = changes[i]
        if value <= 0:
            break
        if used.isdisjoint(change.replaces):
            taken.append(change)
            used.update(change.replaces)
    return taken


def apply(baseline: list[int], taken: list[Change]) -> list[int]:
    """The crops that are items after ``taken``: the baseline's, less those replaced, plus the new ones."""
    replaced = {i for change in taken for i in change.replaces}
    return [i for i in baseline if i not in replaced] + [i for change in taken for i in change.into]
