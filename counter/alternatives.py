"""Other ways to cut one blob into items, for the recogniser to judge (``counter/recognised.py``).

The classical splitter gives each blob one set of parts. Where that could be wrong, other parts are proposed:

* a part at least ``split_items`` typical items big may be two items pressed together (the most common
  miss: two products as convex as one, no concavity or distance peak between them): it is proposed cut in
  two at the median of its pixels along its long axis, and split between its two highest distance peaks
  when it has two; one at least ``split3_items`` big also cut in three along its long axis (off by default:
  on the tuning seeds it never helped);
* two neighbouring parts no bigger together than ``merge_items`` typical items may be one item cut in two
  (a melon half, a carton): proposed merged; so is a whole blob of three or four parts that small.

Nothing is proposed without an expected item size (``item_area`` 0): which parts are big is not known.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from counter.blobs import Blob
from counter.distance_peaks import peaks
from counter.watershed import fill_unassigned


@dataclass(frozen=True)
class ProposalConfig:
    split_items: float = 1.8  # a part this many typical items big may hold two
    split3_items: float = 0.0  # ... this many, three (0: never proposed)
    merge_items: float = 2.0  # neighbouring parts together at most this many typical items may be one (0: never)
    min_peak: float = 8.0  # px (working size): a distance peak lower than this seeds no item
    peak_dynamic: float = 0.05  # ... nor one that drops less than this share of its height to a higher one


@dataclass(frozen=True)
class Proposal:
    """Replace the blob's parts ``replaces`` (indices into ``Blob.parts``) by the masks ``into``."""

    replaces: tuple[int, ...]
    into: list[np.ndarray]


def proposals(blob: Blob, min_area: float, item_area: float, config: ProposalConfig) -> list[Proposal]:
    """The other cuts of ``blob`` worth asking the recogniser about (none without an expected item size)."""
    if item_area <= 0:
        return []
    out: list[Proposal] = []
    areas = [int(np.count_nonzero(p)) for p in blob.parts]
    for i, part in enumerate(blob.parts):
        if areas[i] >= config.split_items * item_area:
            cuts = [along_axis(part, 2), between_peaks(part, config)]
            if 0 < config.split3_items * item_area <= areas[i]:
                cuts.append(along_axis(part, 3))
            out += [Proposal((i,), cut) for cut in cuts if cut and min(np.count_nonzero(m) for m in cut) >= min_area]
    grown = [cv2.dilate(p, np.ones((3, 3), np.uint8)) for p in blob.parts]
    for i in range(len(blob.parts)):
        for j in range(i + 1, len(blob.parts)):
            if areas[i] + areas[j] <= config.merge_items * item_area and (grown[i] & blob.parts[j]).any():
                out.append(Proposal((i, j), [blob.parts[i] | blob.parts[j]]))
    if 3 <= len(blob.parts) <= 4 and sum(areas) <= config.merge_items * item_area:
        out.append(Proposal(tuple(range(len(blob.parts))), [blob.component]))
    return out


def along_axis(part: np.ndarray, pieces: int) -> list[np.ndarray]:
    """``part`` cut into ``pieces`` of equal area across its long axis (the principal axis of its pixels)."""
    ys, xs = np.nonzero(part)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    along = centred @ vectors[:, -1]  # eigh sorts ascending: the last is the long axis
    edges = np.quantile(along, np.linspace(0, 1, pieces + 1)[1:-1])
    index = np.searchsorted(edges, along)
    out = []
    for k in range(pieces):
        mask = np.zeros_like(part)
        mask[ys[index == k], xs[index == k]] = 1
        out.append(mask)
    return out


def between_peaks(part: np.ndarray, config: ProposalConfig) -> list[np.ndarray]:
    """``part`` split between its two highest distance peaks (each pixel to the nearer, through the part),
    or nothing when it has fewer than two that stand out."""
    padded = cv2.copyMakeBorder(part, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    found = sorted(
        ((h, y, x) for y, x, h, d in peaks(distance) if h >= config.min_peak and d >= config.peak_dynamic * h),
        reverse=True,
    )
    if len(found) < 2:
        return []
    markers = np.zeros(part.shape, np.int32)
    for label, (_, y, x) in enumerate(found[:2], start=1):
        markers[y, x] = label
    regions = fill_unassigned(markers, part, 2)
    return [(regions == 1).astype(np.uint8), (regions == 2).astype(np.uint8)]
