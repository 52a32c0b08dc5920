"""Counter photos → item boxes: box geometry, the scene generator, the background segmenter."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter.boxes import Box, iou, match, reading_order  # noqa: E402
from counter.scenes import make_scene  # noqa: E402
from counter.segment import BackgroundSegmenter, fill_holes, match_light  # noqa: E402
from tests.counter.toy_products import PRODUCTS  # noqa: E402


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
    assert iou(a, b) == pytest.approx(50 / 150) and iou(a, Box(20, 20, 30, 30)) == 0.0
    assert a.gap(Box(13, 0, 20, 10)) == 3 and a.gap(b) == 0
    assert Box(10, 10, 20, 20).padded(0.1, 25, 25) == Box(9, 9, 21, 21)
    assert Box(0, 0, 10, 10).padded(0.5, 12, 12) == Box(0, 0, 12, 12)
    found, truth = [Box(0, 0, 10, 10), Box(50, 50, 60, 60)], [Box(1, 1, 10, 10), Box(100, 100, 110, 110)]
    assert match(found, truth) == [(0, 0)]
    boxes = [Box(50, 0, 60, 10), Box(0, 2, 10, 12), Box(0, 40, 10, 50)]
    assert reading_order(boxes) == [1, 0, 2] and reading_order([]) == []


def test_scenes_are_seeded_and_boxes_hold_the_items():
    first, again = (
        make_scene(PRODUCTS, 3, n_items=4, touching=False),
        make_scene(PRODUCTS, 3, n_items=4, touching=False),
    )
    assert np.array_equal(first.photo, again.photo) and first.items == again.items
    assert first.photo.shape == first.background.shape == (720, 960, 3)
    assert len(first.items) == 4 and not first.touching
    for a in first.items:
        for b in first.items:
            if a is not b:
                assert a.box.gap(b.box) > 0
        patch = first.photo[a.box.y0 : a.box.y1, a.box.x0 : a.box.x1].astype(int)
        under = first.background[a.box.y0 : a.box.y1, a.box.x0 : a.box.x1].astype(int)
        assert np.abs(patch - under).mean() > 10  # something is there
    touching = make_scene(PRODUCTS, 4, n_items=3, touching=True)
    assert touching.touching and any(
        a.box.gap(b.box) == 0 for a in touching.items for b in touching.items if a is not b
    )


@pytest.mark.parametrize("seed", range(6))
def test_items_apart_are_counted_and_boxed_under_another_light(seed):
    scene = make_scene(PRODUCTS, seed, n_items=1 + seed % 4, touching=False)
    boxes = BackgroundSegmenter().segment(scene.photo, scene.background)
    assert len(boxes) == len(scene.items)
    assert len(match(boxes, [i.box for i in scene.items])) == len(scene.items)


def test_plain_counter_fallback_without_a_background():
    scene = make_scene(PRODUCTS, 11, n_items=3, touching=False, surface_kind="laminate")
    boxes = BackgroundSegmenter().segment(scene.photo)
    assert len(match(boxes, [i.box for i in scene.items])) == 3


def test_two_touching_discs_are_split():
    photo = np.full((300, 400, 3), 120, np.uint8)
    background = photo.copy()
    yy, xx = np.mgrid[0:300, 0:400]
    for cx in (150, 245):  # two discs of radius 50 overlapping by 5 px
        photo[(yy - 150) ** 2 + (xx - cx) ** 2 < 50**2] = (200, 30, 30)
    boxes = BackgroundSegmenter().segment(photo, background)
    assert len(boxes) == 2
    assert boxes[0].x1 <= 215 and boxes[1].x0 >= 180  # split near the waist, not in the middle of a disc


def test_light_matching_and_hole_filling():
    rng = np.random.default_rng(0)
    reference = rng.integers(60, 200, (60, 80, 3), dtype=np.uint8)
    darker = (reference * 0.7).astype(np.uint8)
    assert np.abs(match_light(darker, reference).astype(int) - reference).mean() < 3
    ring = np.zeros((20, 20), np.uint8)
    ring[4:16, 4:16] = 255
    ring[8:12, 8:12] = 0
    assert fill_holes(ring)[10, 10] == 255 and fill_holes(ring)[0, 0] == 0


def test_bad_inputs_are_named():
    segmenter = BackgroundSegmenter()
    with pytest.raises(ValueError, match="uint8"):
        segmenter.segment(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="same camera"):
        segmenter.segment(np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8))


def test_touching_cartons_are_split_at_their_seam():
    photo = np.full((300, 400, 3), 120, np.uint8)
    background = photo.copy()
    photo[100:180, 100:200] = (30, 60, 190)  # a blue carton
    photo[130:230, 196:290] = (230, 200, 20)  # a yellow one, 4 px over its edge, lower
    boxes = BackgroundSegmenter().segment(photo, background)
    assert len(boxes) == 2
    truth = [Box(100, 100, 200, 180), Box(196, 130, 290, 230)]
    assert len(match(boxes, truth)) == 2


def test_touching_scenes_are_mostly_counted():
    scenes = [make_scene(PRODUCTS, 100 + seed, n_items=3, touching=True) for seed in range(8)]
    right = sum(len(BackgroundSegmenter().segment(s.photo, s.background)) == len(s.items) for s in scenes)
    assert right >= 5, f"{right} of 8 touching scenes counted right"
