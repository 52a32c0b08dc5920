"""A lane's expected item size reaches the segmenter: ``segmenter_for`` builds the segmenter (its config)
for a lane's photo from the lane's settings, and the checkout's segmentation step uses it (a lane with
its own ``item_area``, a lane without, no lane), reading the settings from a real SQLite catalogue."""

from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import pytest

from gallery.gallery import Gallery
from gallery.lanes import ITEM_AREA_MAX, ITEM_AREA_MIN, LaneSettings
from service import checkout
from tests.conftest import make_jpeg

cv2 = pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter import DEFAULT_ITEM_AREA  # noqa: E402
from counter.boxes import Box  # noqa: E402
from counter.segment import BackgroundSegmenter, Segmenter, SegmenterConfig, lane_config  # noqa: E402


def test_the_lanes_item_area_builds_the_segmenters_config():
    default = BackgroundSegmenter()
    assert default.config.item_area == DEFAULT_ITEM_AREA == SegmenterConfig().item_area
    assert checkout.segmenter_for(default, None) is default  # a lane with no settings
    assert checkout.segmenter_for(default, LaneSettings("lane-1", None, 0.0)) is default  # reset to the default
    high = checkout.segmenter_for(default, LaneSettings("lane-1", 0.2, 0.0))
    assert isinstance(high, BackgroundSegmenter) and high.config == replace(default.config, item_area=0.2)
    assert high.splitter.config == default.config.split
    none = checkout.segmenter_for(default, LaneSettings("lane-1", 0.0, 0.0))
    assert isinstance(none, BackgroundSegmenter) and none.config.item_area == 0.0  # 0: no expected size
    assert default.config.item_area == DEFAULT_ITEM_AREA  # the shared one is never changed
    assert lane_config(default.config, None) is default.config
    assert lane_config(default.config, DEFAULT_ITEM_AREA) is default.config


def test_a_segmenter_without_an_expected_size_ignores_it():
    class Detector(Segmenter):  # e.g. a learned class-agnostic detector
        def segment(self, photo, background=None):
            return []

    detector = Detector()
    assert checkout.segmenter_for(detector, LaneSettings("lane-1", 0.2, 0.0)) is detector


class Recording(BackgroundSegmenter):
    """Records the item_area of the segmenter each photo is segmented with."""

    used: ClassVar[list[float]] = []

    def with_item_area(self, item_area: float) -> BackgroundSegmenter:
        return Recording(lane_config(self.config, item_area))

    def segment(self, photo, background=None):
        Recording.used.append(self.config.item_area)
        return [Box(0, 0, 8, 8)]


def test_the_checkout_segments_a_lanes_photo_with_its_item_area(tmp_path, monkeypatch):
    gallery = Gallery(tmp_path, "model-a", 8)
    gallery.lanes.settings.put("lane-high", 0.006)  # a camera far above its counter: small items
    gallery.lanes.settings.put("lane-low", 0.2)
    gallery.lanes.settings.put("lane-reset", 0.1)
    gallery.lanes.settings.put("lane-reset", None)
    state = SimpleNamespace(
        gallery=gallery,
        settings=SimpleNamespace(max_pixels=10_000_000, counter_segmenter="classical"),
        embedder=SimpleNamespace(input_size=32),
    )
    monkeypatch.setattr(checkout, "load_segmenter", lambda kind="classical": Recording())
    monkeypatch.setattr(Recording, "used", [])
    photo = make_jpeg(1, (96, 64))
    for lane in ("lane-high", "lane-low", "lane-reset", "lane-never-set", None):
        found = checkout._segment(state, photo, lane)  # type: ignore[arg-type]
        assert found.boxes == [Box(0, 0, 8, 8)] and found.pixels.shape == (1, 32, 32, 3)
    assert Recording.used == [0.006, 0.2, DEFAULT_ITEM_AREA, DEFAULT_ITEM_AREA, DEFAULT_ITEM_AREA]
    gallery.close()


def test_the_range_a_lane_may_set_fits_the_segmenter():
    """The smallest item_area a lane may set is the segmenter's smallest item; the default is in range."""
    config = SegmenterConfig()
    assert config.min_area == ITEM_AREA_MIN and ITEM_AREA_MIN < config.item_area < ITEM_AREA_MAX
