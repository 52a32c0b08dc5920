"""What ``bench.counter`` counts for one segmenter over the scenes: boxes, counts, baskets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from counter.boxes import Box, match
from counter.scenes import Scene

ORDER = ["all", "apart", "touching"] + [f"{n} items" for n in range(1, 9)] + ["wood", "laminate", "belt"]


@dataclass
class Tally:
    found: dict[str, list[int]] = field(default_factory=dict)  # layout -> [true positives, boxes found, true boxes]
    counts: dict[str, list[int]] = field(default_factory=dict)  # key -> [right, scenes]
    baskets: dict[str, list[int]] = field(default_factory=dict)
    no_background: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, scene: Scene, boxes: list[Box], skus: list[str] | None) -> None:
        """One scene's boxes (and, when recognised, the SKUs of its crops)."""
        truth = [i.box for i in scene.items]
        matched = match(boxes, truth)
        layout = "touching" if scene.touching else "apart"
        for key in (layout, "all"):
            totals = self.found.setdefault(key, [0, 0, 0])
            totals[0], totals[1], totals[2] = totals[0] + len(matched), totals[1] + len(boxes), totals[2] + len(truth)
        keys = (layout, f"{len(truth)} items", "all", scene.surface)
        for key in keys:
            tally(self.counts, key, len(boxes) == len(truth))
        if skus is not None:
            right = Counter(skus) == Counter(i.sku for i in scene.items)
            for key in keys:
                tally(self.baskets, key, right)

    def add_no_background(self, scene: Scene, boxes: list[Box]) -> None:
        self.no_background[0] += int(len(boxes) == len(scene.items))
        self.no_background[1] += 1

    def rows(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for k in ORDER:
            if k not in self.counts:
                continue
            row: dict[str, object] = {"scenes": k, "n": self.counts[k][1], "count right": ratio(self.counts[k])}
            if k in self.baskets:
                row["basket exactly right"] = ratio(self.baskets[k])
            rows.append(row)
        return rows

    def detection(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, (tp, n_found, n_true) in self.found.items():
            suffix = "" if key == "all" else f"_{key}"
            out[f"precision_iou50{suffix}"] = tp / max(1, n_found)
            out[f"recall_iou50{suffix}"] = tp / max(1, n_true)
        out["no_background_apart_count_right"] = self.no_background[0] / max(1, self.no_background[1])
        return out


def tally(table: dict[str, list[int]], key: str, ok: bool) -> None:
    table.setdefault(key, [0, 0])
    table[key][0] += int(ok)
    table[key][1] += 1


def ratio(pair: list[int]) -> float:
    return pair[0] / pair[1]


Recognise = Callable[[list[np.ndarray]], list[str]]
