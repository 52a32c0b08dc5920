"""Items that touch: one foreground blob cut into one mask per item (``TouchingSplitter.parts``).

Classical cues (OpenCV), none needing to know the products, one module each, applied in this order:

* **concavities** (``counter/concavity_cut.py``): where two convex items meet, the blob's outline folds
  inwards on both sides of the seam; the blob is cut along the straight line between two deep concavities,
  recursively;
* **distance peaks** (``counter/watershed.py``, ``counter/distance_peaks.py``): each piece's distance
  transform, with the photo's long edges inside the blob (``counter/long_edges.py``) carved out, has one
  peak per item; the peaks that stand out by their dynamic seed a watershed, at least as many as the
  expected item size (``item_area``) asks for and not many more;
* **an edge across a convex part** (``counter/seam_split.py``): two products pressed into a part as convex
  as one item are split along a long photo edge that divides it into two item-shaped sides of clearly
  different colours;
* **merge-back** (``counter/merge_back.py``): two neighbouring parts of alike colours whose union is
  convex, or of nearly the same mean colour whose union is as convex as one item, were one item split in two.

A product made of several parts (a bunch of bananas, three onions) looks like touching items to all of
them; ``min_solidity``, ``dynamic`` and the merge-back trade splitting those against merging items
that touch. The knobs: ``SplitConfig`` (``counter/split_config.py``).
"""

from __future__ import annotations

import numpy as np

from counter.concavity_cut import best_cut, cut_at_concavities
from counter.distance_peaks import peaks
from counter.long_edges import long_edges
from counter.merge_back import merge_back
from counter.seam_split import seam_sides
from counter.split_config import SplitConfig
from counter.watershed import fill_unassigned, seeds, split_at_peaks

__all__ = ["SplitConfig", "TouchingSplitter", "fill_unassigned", "long_edges", "peaks"]

DEFAULT_CONFIG = SplitConfig()


class TouchingSplitter:
    def __init__(self, config: SplitConfig = DEFAULT_CONFIG):
        self.config = config

    def parts(
        self,
        component: np.ndarray,
        seams: np.ndarray | None,
        min_area: float,
        colours: np.ndarray | None = None,
        item_area: float = 0.0,
    ) -> list[np.ndarray]:
        """One uint8 (0/1) mask per item of ``component`` (a 0/1 blob), cut at concavities, then split at
        distance peaks; ``seams``: long photo edges over the same pixels, or None; ``colours``: the photo in
        CIELAB (float32) over the same pixels (a cut between two sides of different colours is taken more
        readily), or None."""
        found = [
            part for piece in self.cut(component, colours) for part in self.split(piece, seams, min_area, item_area)
        ]
        if colours is not None:
            found = [side for part in found for side in self.split_at_seams(part, seams, colours, item_area)]
        if colours is None or len(found) < 2 or self.config.merge_similarity > 1:
            return found
        return self.merge_back(found, colours, item_area)

    def split_at_seams(
        self, part: np.ndarray, seams: np.ndarray | None, colours: np.ndarray, item_area: float
    ) -> list[np.ndarray]:
        """``part`` as one mask, or as two when a long edge runs across it between two products of different
        colours (``counter/seam_split.py``); every pixel of the part to the side it reaches first."""
        sides = seam_sides(part, seams, colours, item_area, self.config.seam)
        if sides is None:
            return [part]
        markers = np.zeros(part.shape, np.int32)
        markers[sides[0] > 0], markers[sides[1] > 0] = 1, 2
        regions = fill_unassigned(markers, part, 2)
        return [(regions == 1).astype(np.uint8), (regions == 2).astype(np.uint8)]

    def merge_back(self, parts: list[np.ndarray], colours: np.ndarray, item_area: float = 0.0) -> list[np.ndarray]:
        """Over-splits merged back (``counter/merge_back.py``)."""
        return merge_back(parts, colours, item_area, self.config)

    def seeds(self, distance: np.ndarray, wanted: int = 0, allowed: int = 0) -> list[tuple[int, int]]:
        """Watershed seeds ``(y, x)`` from the distance transform's peaks (``counter/watershed.py``)."""
        return seeds(distance, wanted, allowed, self.config)

    def cut(self, component: np.ndarray, colours: np.ndarray | None = None) -> list[np.ndarray]:
        """``component`` cut at its outline's concavities, recursively (``counter/concavity_cut.py``)."""
        return cut_at_concavities(component, colours, self.config)

    def best_cut(
        self, piece: np.ndarray, colours: np.ndarray | None = None
    ) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The best cut between two of ``piece``'s concavities, or None (``counter/concavity_cut.py``)."""
        return best_cut(piece, colours, self.config)

    def split(
        self, component: np.ndarray, seams: np.ndarray | None = None, min_area: float = 0.0, item_area: float = 0.0
    ) -> list[np.ndarray]:
        """One mask per item in ``component``, a watershed from its distance peaks (``counter/watershed.py``)."""
        return split_at_peaks(component, seams, min_area, item_area, self.config)
