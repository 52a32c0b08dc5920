"""POST /v1/checkout: what is refused and why (in process); the full path is tests/e2e/test_checkout.py."""

import sys

import pytest

from service import checkout
from tests.conftest import make_jpeg


def error(r):
    return r.json()["error"]


def test_photo_or_images_exactly_one(client):
    e = error(
        client.post(
            "/v1/checkout",
            files=[("photo", ("p.jpg", make_jpeg(1), "image/jpeg")), ("images", ("c.jpg", make_jpeg(2), "image/jpeg"))],
        )
    )
    assert e["status"] == 422 and "not both" in e["message"]
    e = error(client.post("/v1/checkout", files=[("image", ("c.jpg", make_jpeg(2), "image/jpeg"))]))
    assert e["status"] == 422 and "not neither" in e["message"] and "['image']" in e["message"]
    e = error(client.post("/v1/checkout", content=make_jpeg(1), headers={"Content-Type": "image/jpeg"}))
    assert e["status"] == 415 and "'image/jpeg'" in e["message"] and "multipart/form-data" in e["message"]


def test_bad_lane_and_several_photos(client):
    photo = ("p.jpg", make_jpeg(1), "image/jpeg")
    e = error(client.post("/v1/checkout", files=[("photo", photo)], data={"lane": "../x"}))
    assert e["status"] == 422 and "'../x'" in e["message"]
    e = error(client.post("/v1/checkout", files=[("images", photo)], data={"lane": "3"}))
    assert e["status"] == 422 and e["code"] == "lane_without_photo"
    e = error(client.post("/v1/checkout", files=[("photo", photo), ("photo", photo)]))
    assert e["status"] == 422 and "received 2" in e["message"]


def test_a_bad_crop_is_named_and_nothing_is_priced(client):
    client.put("/v1/skus/tea", json={"name": "Tea", "price": "2.35"})
    client.post("/v1/skus/tea/images", files=[("images", ("t.jpg", make_jpeg(3), "image/jpeg"))])
    e = error(
        client.post(
            "/v1/checkout",
            files=[
                ("images", ("a.jpg", make_jpeg(3), "image/jpeg")),
                ("images", ("b.jpg", b"not an image", "image/jpeg")),
            ],
        )
    )
    assert e["status"] == 400 and "image 2 of 2" in e["message"]


@pytest.mark.parametrize("lane", ["lane1\n", "lane1\r\n", "\nlane1"])
def test_a_lane_with_a_newline_is_refused(client, lane):
    """re.match with '$' accepted "lane1\n" ('$' matches before a final newline)."""
    photo = ("p.jpg", make_jpeg(1), "image/jpeg")
    e = error(client.post("/v1/checkout", files=[("photo", photo)], data={"lane": lane}))
    assert e["status"] == 422 and e["code"] == "invalid_lane" and repr(lane) in e["message"]


def test_the_segmenter_is_resolved_once_off_the_event_loop(client, monkeypatch):
    """The first photo checkout imports OpenCV in a worker thread, not on the event loop; a missing
    OpenCV is found once, not tried again on every request (the outcome is kept per process)."""
    import asyncio
    import importlib

    real_import, seen = importlib.import_module, []

    def watching(name, *args):
        if name == "cv2":
            try:
                asyncio.get_running_loop()
                seen.append("event loop")
            except RuntimeError:
                seen.append("worker thread")
        return real_import(name, *args)

    monkeypatch.setattr(checkout.importlib, "import_module", watching)
    monkeypatch.setitem(sys.modules, "cv2", None)  # what an install without the counter extra sees
    checkout.segmenter_outcome.cache_clear()
    photo = ("p.jpg", make_jpeg(1), "image/jpeg")
    for _ in range(3):
        assert error(client.post("/v1/checkout", files=[("photo", photo)]))["code"] == "counter_extra_missing"
    assert seen == ["worker thread"]
    monkeypatch.undo()
    checkout.segmenter_outcome.cache_clear()


def test_without_opencv_the_photo_form_says_which_extra_and_crops_still_work(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # what an install without the counter extra sees
    checkout.segmenter_outcome.cache_clear()
    e = error(client.post("/v1/checkout", files=[("photo", ("p.jpg", make_jpeg(1), "image/jpeg"))]))
    assert e["status"] == 501 and e["code"] == "counter_extra_missing" and "skulens[counter]" in e["message"]
    r = client.post("/v1/checkout", files=[("images", ("c.jpg", make_jpeg(2), "image/jpeg"))])
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    monkeypatch.undo()
    checkout.segmenter_outcome.cache_clear()  # an install with the extra is back to photos
    assert checkout.load_segmenter() is checkout.load_segmenter()


@pytest.mark.parametrize("role, status", [("checkout", 200), (None, 401)])
def test_checkout_needs_a_checkout_key(make_client, tmp_path, role, status):
    keys = tmp_path / "keys"
    keys.write_text("checkout till-key-0123456789\n")
    client = make_client(api_keys_file=keys)
    headers = {"X-API-Key": "till-key-0123456789"} if role else {}
    r = client.post("/v1/checkout", files=[("images", ("c.jpg", make_jpeg(2), "image/jpeg"))], headers=headers)
    assert r.status_code == status
