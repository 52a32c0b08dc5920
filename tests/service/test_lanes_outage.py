"""A lane checkout while the shared PostgreSQL catalogue is down: the lane's background comes from this
process's memory (its record as last read, its decoded photo), else the plain-counter fallback with a
note; its settings (``item_area``) as last read, else the default; never a 503. While the server is up,
a background already decoded is not read again."""

import numpy as np
import pytest

import service.lanes as service_lanes
from gallery.gallery import Gallery
from gallery.stores.base import CatalogUnreachable
from service.lanes import DecodedCache, background_for, store_background
from tests.conftest import make_jpeg
from tests.pg_server import start_server

DIM = 8
MAX_PIXELS = 10_000_000


def test_a_lane_checkout_answers_while_the_catalogue_is_down(tmp_path, monkeypatch):
    monkeypatch.setattr(service_lanes, "DECODED", DecodedCache())
    server = start_server()  # a server of its own: this test stops it
    try:
        gallery = Gallery(tmp_path / "a", "model-a", DIM, catalog=server.new_database())
        record, _ = store_background(gallery, "lane-1", make_jpeg(1), MAX_PIXELS)  # decoded when stored
        gallery.lanes.put("lane-2", make_jpeg(2), "image/jpeg", 160, 120)  # stored, never read here
        gallery.lanes.put("lane-3", make_jpeg(3), "image/jpeg", 160, 120)
        gallery.lanes.settings.put("lane-1", 0.05)
        gallery.store.put_lane_settings(("lane-2", 0.06, 0.0))  # stored by another replica, never read here
        shape = (120, 160, 3)
        reads: list[str] = []
        photo_get = gallery.lanes.blobs.get
        monkeypatch.setattr(gallery.lanes.blobs, "get", lambda digest: reads.append(digest) or photo_get(digest))
        up = background_for(gallery, "lane-1", shape, MAX_PIXELS)
        assert up.pixels is not None and up.record == record and reads == []  # decoded: its bytes not read again
        assert background_for(gallery, "lane-3", shape, MAX_PIXELS).pixels is not None and len(reads) == 1
        monkeypatch.setattr(service_lanes, "DECODED", DecodedCache(size=1))  # only lane-3's photo stays decoded
        service_lanes.DECODED.put(
            gallery.lanes.last_known("lane-3").sha256,  # type: ignore[union-attr]
            np.zeros(shape, np.uint8),
        )

        assert gallery.lanes.settings.current("lane-1").item_area == 0.05  # type: ignore[union-attr]
        assert gallery.lanes.settings.current("lane-3") is None  # none: the default

        server.stop("fast")
        gallery.check_model()  # not behind: nothing to read
        known = background_for(gallery, "lane-3", shape, MAX_PIXELS)  # record as last read, photo in memory
        assert known.pixels is not None and known.note is None and known.record is not None
        for lane, why in (("lane-1", "is not in this process's memory"), ("lane-2", "was not read here before")):
            fallback = background_for(gallery, lane, shape, MAX_PIXELS)
            assert fallback.pixels is None and fallback.note is not None
            assert "cannot be reached" in fallback.note and why in fallback.note and "plain-counter" in fallback.note
        settings = gallery.lanes.settings
        assert settings.current("lane-1").item_area == 0.05  # type: ignore[union-attr]  # as last read
        assert settings.current("lane-2") is None and settings.current("lane-3") is None  # the default
        with pytest.raises(CatalogUnreachable):
            settings.get("lane-1")  # GET /v1/lanes/{lane}: 503
        gallery.close(snapshot=False)
    finally:
        server.close()
