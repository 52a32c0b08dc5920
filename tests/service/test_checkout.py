"""POST /v1/checkout: what is refused and why (in process); the full path is tests/e2e/test_checkout.py."""

import sys

import pytest

from service import checkout
from tests.conftest import make_jpeg


def error(r):
    return r.json()["error"]


def test_photo_or_images_exactly_one(client):
    e = error(client.post("/v1/checkout", files=[("photo", ("p.jpg", make_jpeg(1), "image/jpeg")),
                                                 ("images", ("c.jpg", make_jpeg(2), "image/jpeg"))]))
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
    e = error(client.post("/v1/checkout", files=[("images", ("a.jpg", make_jpeg(3), "image/jpeg")),
                                                 ("images", ("b.jpg", b"not an image", "image/jpeg"))]))
    assert e["status"] == 400 and "image 2 of 2" in e["message"]


def test_without_opencv_the_photo_form_says_which_extra_and_crops_still_work(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # what an install without the counter extra sees
    checkout.load_segmenter.cache_clear()
    e = error(client.post("/v1/checkout", files=[("photo", ("p.jpg", make_jpeg(1), "image/jpeg"))]))
    assert e["status"] == 501 and e["code"] == "counter_extra_missing" and "skulens[counter]" in e["message"]
    r = client.post("/v1/checkout", files=[("images", ("c.jpg", make_jpeg(2), "image/jpeg"))])
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    monkeypatch.undo()
    checkout.load_segmenter.cache_clear()  # an install with the extra is back to photos
    assert checkout.load_segmenter() is checkout.load_segmenter()


@pytest.mark.parametrize("role, status", [("checkout", 200), (None, 401)])
def test_checkout_needs_a_checkout_key(make_client, tmp_path, role, status):
    keys = tmp_path / "keys"
    keys.write_text("checkout till-key-0123456789\n")
    client = make_client(api_keys_file=keys)
    headers = {"X-API-Key": "till-key-0123456789"} if role else {}
    r = client.post("/v1/checkout", files=[("images", ("c.jpg", make_jpeg(2), "image/jpeg"))], headers=headers)
    assert r.status_code == status
