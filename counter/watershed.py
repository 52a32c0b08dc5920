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
from dataclasses import dataclass

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
    relief = (255 - cv2.normalize(distance, np.empty_like(distance), 0, 255, cv2.NORM_MINMAX)).astype(np.uint8)
    return flood(component, relief, found, [max(1, int(distance[y, x] * 0.3)) for y, x in found], min_area)


@dataclass(frozen=True)
class Centres:
    """The items' centres ``(y, x)`` a learned detector found in the working copy (``counter/centres.py``),
    and its heatmap over the same pixels (float32, 0-1, highest at a centre)."""

    points: list[tuple[int, int]]
    heat: np.ndarray


def split_at_centres(
    component: np.ndarray, centres: list[tuple[int, int]], heat: np.ndarray, min_area: float
) -> list[np.ndarray]:
    """One mask per centre ``(y, x)`` of ``component``, a watershed on the detector's heatmap over its pixels
    (basins at the centres; the ridge where one item's heat gives way to the next's is the cut); fewer than two
    centres: the component whole."""
    if len(centres) < 2:
        return [component]
    level = (255 * (1 - np.clip(heat, 0.0, 1.0))).astype(np.uint8)
    relief = cv2.copyMakeBorder(level, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    return flood(component, relief, [(y + 1, x + 1) for y, x in centres], [2] * len(centres), min_area)


def flood(
    component: np.ndarray,
    relief: np.ndarray,
    found: list[tuple[int, int]],
    radii: list[int],
    min_area: float,
) -> list[np.ndarray]:
    """One mask per seed ``(y, x)`` (a disc of its radius), a watershed on ``relief`` (uint8, ``component``
    padded by 1 px, low where an item's middle is); a region under ``min_area`` px gives up its seed and the
    rest flood again. Fewer than two seeds: the component whole."""
    found, radii = list(found), list(radii)
    outside = cv2.copyMakeBorder(component, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0) == 0
    image = cv2.cvtColor(relief, cv2.COLOR_GRAY2BGR)
    while len(found) >= 2:
        markers = np.zeros(relief.shape, np.int32)
        for number, ((y, x), radius) in enumerate(zip(found, radii), start=1):
            cv2.circle(markers, (x, y), radius, number, -1)
        markers[outside] = len(found) + 1  # the counter is a basin of its own
        cv2.watershed(image, markers)
        regions = fill_unassigned(markers[1:-1, 1:-1], component, len(found))
        areas = np.bincount(regions[component > 0], minlength=len(found) + 1)[1:]
        if areas.min() >= min_area:  # every region an item: done; else drop the smallest's seed and flood again
            return [(regions == i).astype(np.uint8) for i in range(1, len(found) + 1)]
        smallest = int(np.argmin(areas))
        found.pop(smallest)
        radii.pop(smallest)
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
