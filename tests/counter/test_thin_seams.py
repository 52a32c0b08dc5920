"""The counter segmenter, third round (issue 12): thin items kept, seams between two products, merge-back by
mean colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from PIL import Image  # noqa: E402

from counter.boxes import Box, match  # noqa: E402
from counter.scenes import Product, make_scene  # noqa: E402
from counter.seam_split import seam_sides  # noqa: E402
from counter.segment import BackgroundSegmenter, SegmenterConfig  # noqa: E402
from counter.thin import ThinConfig, thin_items  # noqa: E402
from counter.touching import TouchingSplitter, long_edges  # noqa: E402


def counter_photo(value: tuple[int, int, int] = (60, 60, 60), size: tuple[int, int] = (360, 480)) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.broadcast_to(np.array(value, np.float32), (*size, 3))
    return np.clip(base + rng.normal(0, 2, size=(*size, 1)), 0, 255).astype(np.uint8)


def with_leek(photo: np.ndarray, length: int) -> np.ndarray:
    """``photo`` with a pale green stick 4 px wide and ``length`` px long lying at a slant (at the working size:
    the photo is 480 px wide), and a carton far from it."""
    out = photo.copy()
    cv2.line(out, (60, 300), (60 + int(length * 0.8), 300 - int(length * 0.6)), (170, 210, 150), 4)
    out[60:140, 300:380] = (200, 40, 40)
    return out


def test_a_long_thin_item_apart_is_found_not_erased_by_the_clean_up():
    background = counter_photo()
    photo = with_leek(background, 90)
    boxes = BackgroundSegmenter().segment(photo, background)
    leek = Box(58, 244, 134, 303)
    assert len(boxes) == 2 and len(match(boxes, [leek, Box(300, 60, 380, 140)])) == 2
    without = SegmenterConfig(thin=ThinConfig(length=0))  # the clean-up alone erases it (the segmenter before)
    assert len(BackgroundSegmenter(without).segment(photo, background)) == 1


def test_a_short_thin_piece_is_not_an_item():
    background = counter_photo()
    assert len(BackgroundSegmenter().segment(with_leek(background, 30), background)) == 1  # a stem, a bridge


def test_thin_items_are_only_what_the_clean_up_erased_entirely():
    before = np.zeros((100, 200), np.uint8)
    cv2.line(before, (10, 90), (90, 30), 255, 6)  # long and thin, alone: an item
    before[20:80, 120:180] = 255
    cv2.line(before, (120, 50), (60, 95), 255, 6)  # as long and thin, but a part of a kept item (its stem)
    after = np.zeros_like(before)  # what the opening left: the item, and a speck of the stick
    after[20:80, 120:180] = 255
    after[58:62, 48:52] = 255
    found = thin_items(before, after, min_item=500)
    assert len(found) == 1 and found[0][60, 50] == 1 and found[0][50, 150] == 0
    thick = np.zeros_like(before)
    thick[20:60, 10:110] = 255  # long but 40 px wide: not thin (the size filter's business)
    assert thin_items(thick, np.zeros_like(thick), min_item=500) == []


def flush_pair(right: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A photo with two cartons side by side, flush (one convex blob of about two typical items), the left one
    red, the right one ``right``; and its background."""
    background = counter_photo()
    photo = background.copy()
    photo[100:170, 100:160] = (200, 40, 40)
    photo[100:170, 160:220] = right
    return photo, background


def test_two_products_flush_in_one_convex_blob_are_split_at_the_edge_between_them():
    photo, background = flush_pair((40, 60, 200))
    boxes = BackgroundSegmenter().segment(photo, background)
    assert len(match(boxes, [Box(100, 100, 160, 170), Box(160, 100, 220, 170)])) == 2 and len(boxes) == 2
    # one colour on both sides (one product, or two alike): no edge between them, and nothing to tell: one
    same, _ = flush_pair((200, 40, 40))
    assert len(BackgroundSegmenter().segment(same, background)) == 1


def test_seam_sides_need_two_item_shaped_sides_of_different_colours():
    photo, _ = flush_pair((40, 60, 200))
    part = np.zeros(photo.shape[:2], np.uint8)
    part[100:170, 100:220] = 1
    colours = cv2.cvtColor(photo, cv2.COLOR_RGB2LAB).astype(np.float32)
    seams = long_edges(photo, 35)
    item_area = 60 * 70.0
    sides = seam_sides(part, seams, colours, item_area)
    assert sides is not None and sides[0][130, 120] != sides[1][130, 120]
    assert seam_sides(part, None, colours, item_area) is None  # no edges: nothing to split at
    assert seam_sides(part, seams, colours, 10 * item_area) is None  # smaller than an item: not tried
    pale = cv2.cvtColor(flush_pair((205, 45, 50))[0], cv2.COLOR_RGB2LAB).astype(np.float32)
    assert seam_sides(part, seams, pale, item_area) is None  # the sides' colours alike: one product


def test_merge_back_joins_two_parts_of_one_mean_colour_whose_union_is_as_convex_as_an_item():
    left = np.zeros((80, 160), np.uint8)
    left[10:70, 10:80] = 1
    right = np.zeros_like(left)
    right[10:70, 80:150] = 1
    colours = np.zeros((80, 160, 3), np.float32)
    colours[:, :80] = (150, 143, 150)  # a* 143 and 146: either side of a histogram bin's edge, so the
    colours[:, 80:] = (150, 146, 150)  # a*b* histograms do not overlap, but the mean colours are 3 apart
    splitter = TouchingSplitter()
    assert len(splitter.merge_back([left, right], colours)) == 1
    colours[:, 80:] = (150, 165, 150)  # 22 apart: two products
    assert len(splitter.merge_back([left, right], colours)) == 2
    colours[:, 80:] = (150, 146, 150)
    bar = np.zeros_like(right)
    bar[10:25, 80:150] = 1  # close in colour, but together an L, not one item
    assert len(splitter.merge_back([left, bar], colours)) == 2


@pytest.mark.parametrize("seed", [1083, 1214, 1315])
def test_generated_scenes_with_a_leek_apart_from_the_tuning_range(grocery: Path, seed: int):
    """Scenes of the tuning range (bench/README.md) whose leek the segmenter before this change lost."""
    catalogue = [
        Product(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in sorted((grocery / "iconic").glob("*.jpg"))
    ]
    scene = make_scene(catalogue, seed)
    assert not scene.touching and "Leek" in {i.sku for i in scene.items}
    boxes = BackgroundSegmenter().segment(scene.photo, scene.background)
    assert len(boxes) == len(scene.items)
    leek = next(i.box for i in scene.items if i.sku == "Leek")
    assert match(boxes, [leek])
