"""The knobs for splitting a blob of touching items into one mask per item (``counter/touching.py``).

One config for every step, so that a lane's or a test's ``SplitConfig(...)`` reaches all of them: the
concavity cut (``counter/concavity_cut.py``), the watershed from distance peaks (``counter/watershed.py``),
the edge across a convex part (``seam``, ``counter/seam_split.py``) and the merge-back
(``counter/merge_back.py``); ``seam_length`` is read by the segmenter (``counter/long_edges.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from counter.seam_split import SeamSplitConfig


@dataclass(frozen=True)
class SplitConfig:
    seam_length: int = 35  # px (working size): edges inside a blob this long count as seams; 0: off
    min_solidity: float = 0.9  # a blob at least this convex (area / hull area) is not split at its peaks
    dynamic: float = 0.3  # a distance peak is an item of its own when it stands this share of its height
    weak_dynamic: float = 0.05  # ... or this share, while the blob's area asks for more items than that
    convex_items: float = 2.5  # a convex blob this many typical items big is split all the same
    area_trust: float = 1.0  # a blob is split into at least this share of the items its area suggests ...
    area_slack: float = 1.5  # ... and into at most this share of them, rounded up
    merge_similarity: float = 0.75  # neighbouring parts this alike in colour (0-1; above 1: never) ...
    merge_solidity: float = 0.85  # ... whose union is this convex are one item
    merge_contrast: float = 13.0  # neighbouring parts whose mean colours (CIELAB) are this close ...
    merge_convex: float = 0.93  # ... and whose union is this convex are one item too
    min_peak: float = 8.0  # px (working size): a thinner bulge is not an item of its own
    level_step: float = 1.0  # px between the distance levels swept for peaks, at least
    levels: int = 40  # levels swept at most
    defect_depth: float = 0.07  # a concavity this deep (share of the blob's sqrt(area)) may end a seam
    seam_ratio: float = 1.0  # a cut at most this many times the two concavities' depths together
    contrast_seam_ratio: float = 3.0  # ... this many when the two sides differ in colour (two products)
    min_contrast: float = 55.0  # CIELAB distance between the mean colours of a cut's two sides
    min_cut_share: float = 0.08  # each side of a cut at least this share of the blob
    max_items: int = 16  # most pieces one blob is cut into
    seam: SeamSplitConfig = field(default_factory=SeamSplitConfig)  # two products in one convex part
