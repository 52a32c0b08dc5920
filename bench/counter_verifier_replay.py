"""Replaying a decision over the collected scenes (``bench/counter_verifier_data.py``) without the model:
the classical items, round 4's rule, or the learned verifier; every SKU enrolled or the scene's own left out."""

from __future__ import annotations

import math
import pickle
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.counter_tally import Tally
from bench.counter_verifier_data import Planned
from counter.hypotheses import Change, DecisionConfig, apply, choose
from counter.scenes import Scene
from counter.verifier import Verifier, choose_learned

RULE = DecisionConfig()  # round 4's rule
Decide = Callable[[Planned, np.ndarray], list[Change]]


def decide_by(config: DecisionConfig) -> Decide:
    """The rule with ``config``'s margins."""

    def decide(scene: Planned, sims: np.ndarray) -> list[Change]:
        return choose(scene.changes, sims, config)

    return decide


def describe_decision(config: DecisionConfig) -> dict[str, Any]:
    """``config``'s margins for a results file (JSON has no infinity: a margin never met reads "never")."""

    def number(value: float) -> float | str:
        return "never" if math.isinf(value) else value

    return {
        "split_margin": number(config.split_margin),
        "merge_margin": number(config.merge_margin),
        "coherence": config.coherence,
        "verifier": config.verifier is not None,
    }


def load(cache: Path, name: str) -> list[Planned]:
    with (cache / f"{name}.pkl").open("rb") as f:
        scenes: list[Planned] = pickle.load(f)
    return scenes


def sims_of(scene: Planned, skus: list[str], unknown: bool) -> np.ndarray:
    if not unknown:
        return scene.sims.astype(np.float64)
    own = {i.sku for i in scene.items}
    return scene.sims[:, [k for k, s in enumerate(skus) if s not in own]].astype(np.float64)


decide_rule = decide_by(RULE)


def decide_with(verifier: Verifier) -> Decide:
    def decide(scene: Planned, sims: np.ndarray) -> list[Change]:
        return choose_learned(scene.changes, scene.shapes, sims, verifier, scene.item_area)

    return decide


def replay(scenes: list[Planned], skus: list[str], decide: Decide | None, unknown: bool) -> Tally:
    tally = Tally()
    blank = np.zeros((1, 1, 3), np.uint8)
    for scene in scenes:
        taken = decide(scene, sims_of(scene, skus, unknown)) if decide is not None and scene.changes else []
        items = apply(scene.baseline, taken)
        shown = Scene(blank, blank, scene.items, scene.surface, scene.touching)
        tally.add(shown, [scene.boxes[i] for i in items], [scene.nearest[i] for i in items])
    return tally


def changed(scenes: list[Planned], skus: list[str], before: Decide, after: Decide, unknown: bool) -> dict[str, int]:
    """Scenes whose count ``after`` makes right (fixed) or wrong (broken) against ``before``, apart / touching."""
    out = {f"{what}_{layout}": 0 for what in ("fixed", "broken") for layout in ("apart", "touching")}
    for scene in scenes:
        if not scene.changes:
            continue
        sims = sims_of(scene, skus, unknown)
        was, now = (len(apply(scene.baseline, d(scene, sims))) == len(scene.items) for d in (before, after))
        layout = "touching" if scene.touching else "apart"
        if was != now:
            out[f"{'fixed' if now else 'broken'}_{layout}"] += 1
    return out


def decision_ms(scenes: list[Planned], skus: list[str], decide: Decide) -> float:
    """Median ms of the decision alone over the scenes where something is proposed."""
    times = []
    for scene in scenes:
        if scene.changes:
            sims = sims_of(scene, skus, False)
            start = time.perf_counter()
            decide(scene, sims)
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times) if times else 0.0
