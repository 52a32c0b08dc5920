"""A blob of touching items split by a watershed from its distance peaks, one region per item.

Each piece's distance transform, with the photo's long edges inside the blob (``counter/long_edges.py``:
the seam where one item ends and the next begins) carved out, has one peak per item; the peaks that stand
out by their dynamic (``counter/distance_peaks.py``) seed a watershed (``split_at_peaks``). Only a blob
less convex than ``min_solidity``, or one several typical items big, is split this way; a region smaller
than an item gives its seed up. The expected item size (``item_area``, the lane's: its camera is fixed)
gives a blob whose area holds several items at least that many seeds (the next most prominent peaks) and
not many more.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from counter.distance_peaks import peaks
from counter.solidity import solidity
from counter.split_config import SplitConfig


def split_at_peaks(
    component: np.ndarray,
    seams: np.ndarray | None,
    min_area: float,
    item_area: float,
    config: SplitConfig,
) -> list[np.ndarray]:
    """One mask per item in ``component``: watershed on the distance transform from its peaks
    (``seams``, long edges inside the blob, carved out of it first so that they make necks); a region
    under ``min_area`` px gives up its seed to its neighbours. ``item_area``: a typical item's area in px
    (0: unknown); a blob of several times that is split into about as many items as it holds."""
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    expected = float(component.sum()) / item_area if item_area > 0 else 0.0
    if solidity(component, contours) >= config.min_solidity and expected < config.convex_items:
        return [component]  # convex and not big: one item (items that touch make a concave blob)
    wanted = int(expected * config.area_trust)
    allowed = max(1, math.ceil(expected * config.area_slack)) if item_area > 0 else 0
    carved = component if seams is None else np.where(seams > 0, 0, component).astype(np.uint8)
    padded = cv2.copyMakeBorder(carved, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
    found = seeds(distance, wanted, allowed, config)
    outside = cv2.copyMakeBorder(component, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0) == 0
    relief = cv2.cvtColor(
        (255 - cv2.normalize(distance, np.empty_like(distance), 0, 255, cv2.NORM_MINMAX)).astype(np.uint8),
        cv2.COLOR_GRAY2BGR,
    )
    while len(found) >= 2:
        markers = np.zeros(distance.shape, np.int32)
        for number, (y, x) in enumerate(found, start=1):
            cv2.circle(markers, (x, y), max(1, int(distance[y, x] * 0.3)), number, -1)
        markers[outside] = len(found) + 1  # the counter is a basin of its own
        cv2.watershed(relief, markers)
        regions = fill_unassigned(markers[1:-1, 1:-1], component, len(found))
        areas = np.bincount(regions[component > 0], minlength=len(found) + 1)[1:]
        if areas.min() >= min_area:  # every region an item: done; else drop the smallest's seed and flood again
            return [(regions == i).astype(np.uint8) for i in range(1, len(found) + 1)]
        found.pop(int(np.argmin(areas)))
    return [component]


def seeds(distance: np.ndarray, wanted: int, allowed: int, config: SplitConfig) -> list[tuple[int, int]]:
    """Watershed seeds ``(y, x)``: the distance transform's peaks of at least ``min_peak`` px whose
    dynamic is at least ``dynamic`` of their height, the most prominent first; at least ``wanted`` (the
    items the blob's area suggests; the next most prominent peaks, down to ``weak_dynamic``) and at most
    ``allowed`` of them (0: no limit)."""
    ranked = sorted(
        (
            (drop / height, y, x)
            for y, x, height, drop in peaks(distance, config.level_step, config.levels)
            if height >= config.min_peak and drop >= config.weak_dynamic * height
        ),
        reverse=True,
    )
    count = max(sum(r >= config.dynamic for r, _, _ in ranked), wanted)
    if allowed:
        count = min(count, allowed)
    return [(y, x) for _, y, x in ranked[:count]]


def fill_unassigned(markers: np.ndarray, component: np.ndarray, count: int) -> np.ndarray:
    """``markers`` (watershed labels 1..count; -1 on its lines, count + 1 for the counter) over ``component``:
    every pixel of the component that the watershed left unlabelled (its lines, or where the counter's basin
    flooded in along a carved seam) given the label of a labelled neighbour, growing inwards; int32, 0 outside."""
    regions = np.where((markers >= 1) & (markers <= count) & (component > 0), markers, 0).astype(np.int32)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(max(component.shape)):
        missing = (component > 0) & (regions == 0)
        if not missing.any():
            break
        grown = cv2.dilate(regions.astype(np.float32), kernel).astype(np.int32)
        regions = np.where(missing, grown, regions)
    return regions
