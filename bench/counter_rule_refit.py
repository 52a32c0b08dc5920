"""Round 4's decision refitted on the learned cut (issue 12, round 9): are its margins right for the centres' parts?

Round 4's rule (``counter.hypotheses.DecisionConfig``: ``split_margin`` 0.15, ``merge_margin`` 0, ``coherence``
0.75) was fitted on proposals made from the *classical* cut; since round 6 the checkout proposes from the
learned centres' parts, which are already right more often, so a split may need more evidence there (or a merge
less). This replays every ``DecisionConfig`` of a grid over the scenes collected with the learned cut
(``bench/counter_verifier.py collect --segmenter learned``: every crop embedded once), chooses on the tuning
seeds 1000-1399 alone (the most scenes counted right with every SKU enrolled and with the scene's own SKUs left
out, together; a tie goes to the config nearest round 4's), and only then replays the chosen config beside round
4's and beside no decision at all on the held-out ranges 0-199 and 20000-20199 (and, when collected, the same
ranges with only the odd-numbered products, which the centre model never trained on: ``halfB_heldout``,
``halfB_heldout2``).

    .venv/bin/python -m bench.counter_verifier collect --segmenter learned --set tuning --set heldout --set heldout2
    .venv/bin/python -m bench.counter_rule_refit [--cache /tmp/counter_r5]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.counter_verifier_data import Planned
from bench.counter_verifier_replay import RULE as ROUND4
from bench.counter_verifier_replay import Decide, changed, decide_by, describe_decision, load, replay
from counter.hypotheses import DecisionConfig

log = logging.getLogger("bench.counter_rule_refit")

SPLIT_MARGINS = (0.0, 0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, math.inf)  # inf: never split
MERGE_MARGINS = (-0.05, 0.0, 0.05, 0.1, 0.2, math.inf)  # inf: never merge
COHERENCES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


@dataclass(frozen=True)
class Scored:
    """One config's count of tuning scenes right: with every SKU enrolled (``store``) and with the scene's own
    SKUs left out (``unknown``)."""

    config: DecisionConfig
    store: int
    unknown: int

    @property
    def total(self) -> int:
        return self.store + self.unknown


def grid() -> list[DecisionConfig]:
    return [DecisionConfig(s, m, c) for s, m, c in itertools.product(SPLIT_MARGINS, MERGE_MARGINS, COHERENCES)]


def distance(config: DecisionConfig, to: DecisionConfig = ROUND4) -> float:
    """How far ``config`` is from ``to`` (never-split and never-merge count as far): for breaking ties."""
    parts = [
        (config.split_margin, to.split_margin, 1.0),
        (config.merge_margin, to.merge_margin, 1.0),
        (config.coherence, to.coherence, 0.2),
    ]
    return sum(
        10.0 if math.isinf(a) != math.isinf(b) else 0.0 if math.isinf(a) else abs(a - b) * w for a, b, w in parts
    )


def best(scored: list[Scored]) -> Scored:
    """The most tuning scenes right over both galleries; of equals, the one nearest round 4's rule."""
    if not scored:
        raise ValueError("no configs scored")
    return min(scored, key=lambda s: (-s.total, distance(s.config)))


def main() -> None:
    from bench.common import Run, skip_without_grocery
    from bench.counter_scorer import store_skus

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/counter_r5"))
    parser.add_argument("--name", default="counter_r9_refit")
    args = parser.parse_args()
    run = Run(args.name)
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    skus = store_skus(root)
    names = ("tuning", "heldout", "heldout2", "halfB_heldout", "halfB_heldout2")  # halfB: odd products only
    sets = {n: load(args.cache, f"learned_{n}") for n in names if (args.cache / f"learned_{n}.pkl").exists()}

    def right(scenes: list[Planned], config: DecisionConfig, unknown: bool) -> int:
        return replay(scenes, skus, decide_by(config), unknown).counts["all"][0]

    scored = [Scored(c, right(sets["tuning"], c, False), right(sets["tuning"], c, True)) for c in grid()]
    chosen = best(scored)
    log.info("chosen on tuning: %s (%d + %d right)", describe_decision(chosen.config), chosen.store, chosen.unknown)
    run.data["grid"] = [{**describe_decision(s.config), "store": s.store, "unknown": s.unknown} for s in scored]
    run.data["chosen"] = describe_decision(chosen.config)
    sides: dict[str, Decide | None] = {
        "learned cut alone": None,
        "round 4 rule": decide_by(ROUND4),
        "refitted rule": decide_by(chosen.config),
    }
    results: dict[str, dict[str, dict[str, object]]] = {}
    for name, scenes in sets.items():
        for mode in ("store", "unknown"):
            unknown = mode == "unknown"
            for side, decide in sides.items():
                tally = replay(scenes, skus, decide, unknown)
                rows, detection = tally.rows(), tally.detection()
                results.setdefault(name, {}).setdefault(mode, {})[side] = {"rows": rows, "detection": detection}
                by = {r["scenes"]: r for r in rows}
                print(
                    f"{name:9s} {mode:8s} {side:18s} apart {by['apart']['count right']:.3f} "
                    f"touching {by['touching']['count right']:.3f} all {by['all']['count right']:.3f} "
                    f"P/R {detection['precision_iou50']:.3f}/{detection['recall_iou50']:.3f} "
                    f"basket {by['all'].get('basket exactly right', float('nan')):.3f}"
                )
            against = changed(scenes, skus, decide_by(ROUND4), decide_by(chosen.config), unknown)
            results[name][mode]["refitted_against_round4"] = against
            print(f"{name:9s} {mode:8s} refitted against round 4, scenes: {against}")
    run.data["results"] = results
    run.save()


if __name__ == "__main__":
    main()
