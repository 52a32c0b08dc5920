"""The learned item centres (``counter/centres.py``): peaks of a heatmap, blobs cut at given centres, and the
shipped centre model on generated counter scenes (real LiteRT, real OpenCV)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter.centres import DEFAULT_CENTRE_MODEL, CentreDetector, LearnedSegmenter, local_peaks
from counter.scenes import catalogue_products, make_scene, product_set
from counter.segment import BackgroundSegmenter
from counter.watershed import split_at_centres
from tests.counter.toy_products import PRODUCTS


def bump(shape: tuple[int, int], y: float, x: float, sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_local_peaks_are_the_maxima_over_the_threshold():
    heat = np.maximum(bump((60, 80), 20, 20, 4), 0.5 * bump((60, 80), 40, 60, 4))
    assert local_peaks(heat, 0.3, 7) == [(20, 20), (40, 60)]
    assert local_peaks(heat, 0.6, 7) == [(20, 20)]  # the lower peak is under the threshold
    assert local_peaks(np.zeros((10, 10), np.float32), 0.3, 7) == []
    plateau = np.zeros((20, 20), np.float32)
    plateau[5:8, 5:8] = 0.9  # equal maxima side by side: one centre, in the middle
    assert local_peaks(plateau, 0.3, 3) == [(6, 6)]


def test_a_blob_is_cut_where_one_centres_heat_gives_way_to_the_next():
    ys, xs = np.mgrid[0:60, 0:110]
    blob = (((ys - 30) ** 2 + (xs - 30) ** 2 < 25**2) | ((ys - 30) ** 2 + (xs - 78) ** 2 < 25**2)).astype(np.uint8)
    # the right item's heat is the wider one: the cut follows the heat, not the blob's neck at x = 54
    heat = np.maximum(bump(blob.shape, 30, 30, 8), bump(blob.shape, 30, 78, 16))
    parts = split_at_centres(blob, [(30, 30), (30, 78)], heat, min_area=100)
    assert len(parts) == 2 and sum(int(p.sum()) for p in parts) == int(blob.sum())
    assert not (parts[0] & parts[1]).any()
    left = next(p for p in parts if p[30, 30])
    # near where the two Gaussians cross on the middle row (the ridge of the relief, x = 46; the relief is
    # quantised to 8 bits, so the floods meet a few px on), and left of the blob's neck (x = 54)
    crossing = next(x for x in range(30, 78) if heat[30, x] == bump(blob.shape, 30, 78, 16)[30, x])
    edge = int(np.flatnonzero(left[30])[-1])
    assert abs(edge - crossing) <= 5 and edge <= 51
    assert len(split_at_centres(blob, [(30, 30)], heat, min_area=100)) == 1  # one centre: one item
    # a part under min_area gives its seed up: the two centres' regions are ~2000 px each
    assert len(split_at_centres(blob, [(30, 30), (30, 78)], heat, min_area=2500)) == 1


@pytest.fixture(scope="module")
def unseen_products(grocery):
    """The catalogue products the shipped centre model never trained on (the odd half in name order)."""
    return product_set(catalogue_products(grocery), "odd")


def test_the_shipped_centre_model_puts_one_centre_on_each_item(unseen_products):
    detector = CentreDetector(DEFAULT_CENTRE_MODEL)
    assert detector.info.provenance["config"]["products"] == "even"
    right = 0
    for seed in range(10):
        scene = make_scene(unseen_products, 40_000 + seed, touching=False)
        heat = detector.heat(scene.photo)
        assert heat.shape == scene.photo.shape[:2] and float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
        centres = detector.centres(scene.photo).points
        right += len(centres) == len(scene.items) and all(
            sum(i.box.x0 <= x < i.box.x1 and i.box.y0 <= y < i.box.y1 for y, x in centres) == 1 for i in scene.items
        )
    assert right >= 7, right  # items apart: one centre inside each item's box (9 of 10 here)


def test_the_learned_segmenter_counts_touching_items_better(unseen_products):
    """Touching products it never trained on: the learned cut counts more scenes right than the classical
    splitter (bench/README.md, round 6, measures it on 400 scenes)."""
    learned, classical = LearnedSegmenter(CentreDetector()), BackgroundSegmenter()
    right = {"learned": 0, "classical": 0}
    for seed in range(20):
        scene = make_scene(unseen_products, 40_100 + seed, touching=True)
        right["learned"] += len(learned.segment(scene.photo, scene.background)) == len(scene.items)
        right["classical"] += len(classical.segment(scene.photo, scene.background)) == len(scene.items)
    assert right["learned"] >= right["classical"] + 2, right  # 16 against 10 here
    assert learned.with_item_area(0.05).detector is learned.detector


def test_flat_toy_products_are_outside_what_it_learned():
    """Untextured discs and boxes (tests/counter/toy_products.py) are not what it was trained on: it still finds
    something on each, never more centres than items (a documented limit, docs/checkout.md)."""
    detector = CentreDetector()
    scene = make_scene(PRODUCTS, 5, n_items=4, touching=False)
    assert 1 <= len(detector.centres(scene.photo).points) <= len(scene.items)
