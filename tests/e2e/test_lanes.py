"""Lane backgrounds end to end on the real server (uvicorn, loopback, SQLite, JPEG files): PUT, GET and
DELETE ``/v1/lanes/{lane}/background``, and ``POST /v1/checkout`` with ``lane`` segmenting against it
(a wood counter, which the plain-counter fallback cannot read), falling back, and saying so, without it.
Lane settings: ``PUT /v1/lanes/{lane}/settings`` (``item_area``, validated), ``GET /v1/lanes/{lane}``,
and a lane's checkout segmented with its own ``item_area``.

As in test_checkout.py, the model is untrained and the threshold 0.999: each product is enrolled with
the very crop the server cuts from the photo (found here by the same segmenter on the same decoded JPEGs).
The server runs with ``SKULENS_COUNTER_RECOGNISED_SPLIT=0`` and ``SKULENS_COUNTER_SEGMENTER=classical`` so that
its boxes are exactly the classical segmenter's: with the recogniser deciding one item or two, an untrained
model's near-ties decide, and those differ between CPUs (a CI machine merged two of the small-item lane's boxes
that this machine kept apart); the learned segmenter through the server is tested in
tests/service/test_checkout_learned.py, the recogniser's decision through a lane in
tests/service/test_checkout_split.py."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
cv2 = pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter import DEFAULT_ITEM_AREA  # noqa: E402
from counter.boxes import match  # noqa: E402
from counter.scenes import make_scene  # noqa: E402
from counter.segment import BackgroundSegmenter, SegmenterConfig  # noqa: E402
from tests.e2e.test_checkout import PRODUCTS, png  # noqa: E402


def jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    server = Server(
        tmp_path_factory.mktemp("lanes") / "data",
        tiny_model_dir,
        ["--threshold", "0.999"],
        env={
            "SKULENS_CATALOGUE_VIEWS": "0",
            "SKULENS_COUNTER_RECOGNISED_SPLIT": "0",
            "SKULENS_COUNTER_SEGMENTER": "classical",
        },
    ).start()
    yield server
    server.stop()


def test_checkout_segments_against_the_lanes_background(server):
    scene = make_scene(PRODUCTS, 21, n_items=4, touching=False, surface_kind="wood")
    photo_jpeg, background_jpeg = jpeg(scene.photo), jpeg(scene.background)
    photo, background = decoded(photo_jpeg), decoded(background_jpeg)
    boxes = BackgroundSegmenter().segment(photo, background)
    pairs = dict(match(boxes, [item.box for item in scene.items]))
    assert len(pairs) == len(boxes) == 4
    truth = [scene.items[pairs[i]].sku for i in range(len(boxes))]
    with server.client() as http:
        r = http.put("/v1/lanes/lane-7/background", files={"image": ("empty.jpg", background_jpeg, "image/jpeg")})
        assert r.status_code == 201, r.text
        assert r.json()["width"] == 960 and r.json()["height"] == 720 and r.json()["media_type"] == "image/jpeg"
        again = http.put("/v1/lanes/lane-7/background", content=background_jpeg, headers={"Content-Type": "image/jpeg"})
        assert again.status_code == 200 and again.json()["sha256"] == r.json()["sha256"]  # replaced (the same photo)
        got = http.get("/v1/lanes/lane-7/background")
        assert got.status_code == 200 and got.content == background_jpeg and got.headers["content-type"] == "image/jpeg"
        for sku in sorted(set(truth)):
            assert http.put(f"/v1/skus/{sku}", json={"name": sku.title(), "price": "1.00"}).status_code == 201
        for index, box in enumerate(boxes):
            crop = photo[box.y0 : box.y1, box.x0 : box.x1]
            r = http.post(f"/v1/skus/{truth[index]}/images", files=[("images", ("c.png", png(crop), "image/png"))])
            assert r.status_code in (200, 201), r.text
        r = http.post(
            "/v1/checkout", files={"photo": ("counter.jpg", photo_jpeg, "image/jpeg")}, data={"lane": "lane-7"}
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["segmentation"] == "lane_background" and out["note"] is None
        assert [item["box"] for item in out["items"]] == [b.as_list() for b in boxes]
        assert [item["sku"] for item in out["items"]] == truth
        assert out["total"] == "4.00" and out["needs_attention"] == []

        # without the background: the plain-counter fallback, said so
        assert http.delete("/v1/lanes/lane-7/background").status_code == 204
        missing = http.get("/v1/lanes/lane-7/background")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "background_not_found"
        assert http.delete("/v1/lanes/lane-7/background").status_code == 404
        r = http.post(
            "/v1/checkout", files={"photo": ("counter.jpg", photo_jpeg, "image/jpeg")}, data={"lane": "lane-7"}
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["segmentation"] == "plain_counter"
        assert "no background is stored for lane 'lane-7'" in out["note"] and "plain-counter fallback" in out["note"]
        r = http.post("/v1/checkout", files={"photo": ("counter.jpg", photo_jpeg, "image/jpeg")})
        assert r.json()["segmentation"] == "plain_counter" and "no lane given" in r.json()["note"]


def test_a_background_of_another_size_falls_back_and_says_so(server):
    scene = make_scene(PRODUCTS, 22, n_items=2, touching=False, surface_kind="laminate")
    smaller = jpeg(np.ascontiguousarray(scene.background[:480, :640]))
    with server.client() as http:
        assert (
            http.put("/v1/lanes/lane-8/background", files={"image": ("e.jpg", smaller, "image/jpeg")}).status_code
            == 201
        )
        r = http.post(
            "/v1/checkout", files={"photo": ("c.jpg", jpeg(scene.photo), "image/jpeg")}, data={"lane": "lane-8"}
        )
    assert r.status_code == 200, r.text
    assert r.json()["segmentation"] == "plain_counter" and "640x480 but this photo is 960x720" in r.json()["note"]
    assert len(r.json()["items"]) == 2


def test_bad_backgrounds_and_lane_ids_are_refused(server):
    with server.client() as http:
        bad = http.put("/v1/lanes/lane-9/background", files={"image": ("e.jpg", b"not an image", "image/jpeg")})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "unreadable_image"
        assert http.get("/v1/lanes/lane-9/background").status_code == 404  # nothing stored
        assert (
            http.put(
                "/v1/lanes/-bad/background",
                content=jpeg(np.zeros((8, 8, 3), np.uint8)),
                headers={"Content-Type": "image/jpeg"},
            ).status_code
            == 422
        )
        text = http.put("/v1/lanes/lane-9/background", content=b"{}", headers={"Content-Type": "application/json"})
        assert text.status_code == 415


def test_background_writes_need_the_merchandiser_role(tmp_path, tiny_model_dir):
    keys = tmp_path / "keys"
    keys.write_text("checkout lane-secret-000000000001\nmerchandiser merch-secret-00000000002\n")
    lane_key, merch_key = {"X-API-Key": "lane-secret-000000000001"}, {"X-API-Key": "merch-secret-00000000002"}
    background = jpeg(make_scene(PRODUCTS, 23, n_items=0).background)
    with Server(tmp_path / "data", tiny_model_dir, ["--api-keys", str(keys)]) as server, server.client() as http:
        url = "/v1/lanes/lane-1/background"
        assert http.put(url, content=background, headers={"Content-Type": "image/jpeg"}).status_code == 401
        assert http.put(url, content=background, headers={"Content-Type": "image/jpeg", **lane_key}).status_code == 403
        assert http.put(url, content=background, headers={"Content-Type": "image/jpeg", **merch_key}).status_code == 201
        assert http.get(url, headers=lane_key).content == background  # a lane may read its own background
        assert http.delete(url, headers=lane_key).status_code == 403
        assert http.delete(url, headers=merch_key).status_code == 204
        settings = "/v1/lanes/lane-1/settings"
        assert http.put(settings, json={"item_area": 0.03}).status_code == 401
        assert http.put(settings, json={"item_area": 0.03}, headers=lane_key).status_code == 403
        assert http.put(settings, json={"item_area": 0.03}, headers=merch_key).status_code == 201
        assert http.get("/v1/lanes/lane-1").status_code == 401
        assert http.get("/v1/lanes/lane-1", headers=lane_key).json()["item_area"] == 0.03  # a lane may read its own


def test_a_damaged_stored_background_falls_back_and_says_so(tmp_path, tiny_model_dir):
    scene = make_scene(PRODUCTS, 24, n_items=2, touching=False, surface_kind="laminate")
    with Server(tmp_path / "data", tiny_model_dir) as server, server.client() as http:
        r = http.put("/v1/lanes/lane-10/background", files={"image": ("e.jpg", jpeg(scene.background), "image/jpeg")})
        assert r.status_code == 201
    stored = tmp_path / "data" / "lanes" / r.json()["sha256"][:2] / r.json()["sha256"]
    stored.write_bytes(stored.read_bytes()[:200])  # damaged on disk while the server was down
    with Server(tmp_path / "data", tiny_model_dir) as server, server.client() as http:
        r = http.post(
            "/v1/checkout", files={"photo": ("c.jpg", jpeg(scene.photo), "image/jpeg")}, data={"lane": "lane-10"}
        )
    assert r.status_code == 200, r.text
    assert r.json()["segmentation"] == "plain_counter" and "cannot be read" in r.json()["note"]
    assert len(r.json()["items"]) == 2


def test_lane_settings_are_stored_read_and_validated(server):
    with server.client() as http:
        missing = http.get("/v1/lanes/lane-20")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "lane_not_found"
        assert "nothing is stored for lane 'lane-20'" in missing.json()["error"]["message"]
        r = http.put("/v1/lanes/lane-20/settings", json={"item_area": 0.02})
        assert r.status_code == 201, r.text
        stored = r.json()
        assert stored["lane"] == "lane-20" and stored["item_area"] == 0.02 and stored["background"] is None
        assert stored["default_item_area"] == DEFAULT_ITEM_AREA and stored["settings_updated_at"] > 0
        assert http.get("/v1/lanes/lane-20").json() == stored

        refused = {
            '{"item_area": 0.9}': ("invalid_lane_setting", "item_area 0.9 is out of range"),
            '{"item_area": 0.001}': ("invalid_lane_setting", "item_area 0.001 is out of range"),
            '{"item_area": -0.02}': ("invalid_lane_setting", "item_area -0.02 is out of range"),
            '{"item_area": "0.02"}': ("invalid_request", "received '0.02'"),
            '{"item_area": true}': ("invalid_request", "received True"),
            '{"item_area": NaN}': ("invalid_request", "received nan"),
            '{"item_area": 1e999}': ("invalid_request", "received inf"),
            '{"item_area": 0.02, "camera": 2}': ("invalid_request", "body.camera"),
            "{}": ("invalid_request", "body.item_area: Field required"),
            "[0.02]": ("invalid_request", "received [0.02]"),
        }
        for body, (code, quoted) in refused.items():
            r = http.put("/v1/lanes/lane-20/settings", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == code and quoted in r.json()["error"]["message"], (body, r.text)
        assert http.get("/v1/lanes/lane-20").json() == stored  # nothing refused was stored
        bad_lane = http.put("/v1/lanes/-bad/settings", json={"item_area": 0.02})
        assert bad_lane.status_code == 422 and http.get("/v1/lanes/-bad").status_code == 422

        r = http.put("/v1/lanes/lane-20/settings", json={"item_area": 0})  # 0: no expected item size
        assert r.status_code == 200 and r.json()["item_area"] == 0
        background = jpeg(make_scene(PRODUCTS, 25, n_items=0).background)
        http.put("/v1/lanes/lane-20/background", content=background, headers={"Content-Type": "image/jpeg"})
        got = http.get("/v1/lanes/lane-20").json()
        assert got["item_area"] == 0 and got["background"]["width"] == 960 and got["background"]["height"] == 720
        r = http.put("/v1/lanes/lane-20/settings", json={"item_area": None})  # back to the default
        assert r.status_code == 200 and r.json()["item_area"] is None and r.json()["background"] == got["background"]
        assert http.delete("/v1/lanes/lane-20/background").status_code == 204
        kept = http.get("/v1/lanes/lane-20").json()  # the settings stay: the lane is still known
        assert kept["background"] is None and kept["item_area"] is None and kept["settings_updated_at"] > 0


def test_a_lanes_checkout_is_segmented_with_its_item_area(server):
    """Items that touch (split by the expected item size): the lane's own item_area gives other boxes than
    the default, exactly those of the segmenter configured with it; reset, the default's again."""
    scene = make_scene(PRODUCTS, 31, n_items=4, touching=True, surface_kind="wood")
    photo_jpeg, background_jpeg = jpeg(scene.photo), jpeg(scene.background)
    photo, background = decoded(photo_jpeg), decoded(background_jpeg)
    default = [b.as_list() for b in BackgroundSegmenter().segment(photo, background)]
    small = [b.as_list() for b in BackgroundSegmenter(SegmenterConfig(item_area=0.004)).segment(photo, background)]
    assert len(default) == 4 and len(small) > len(default)  # a lane whose camera is far higher expects small items

    def boxes(http) -> list[list[int]]:
        r = http.post(
            "/v1/checkout", files={"photo": ("counter.jpg", photo_jpeg, "image/jpeg")}, data={"lane": "lane-21"}
        )
        assert r.status_code == 200 and r.json()["segmentation"] == "lane_background", r.text
        return [item["box"] for item in r.json()["items"]]

    with server.client() as http:
        r = http.put("/v1/lanes/lane-21/background", files={"image": ("e.jpg", background_jpeg, "image/jpeg")})
        assert r.status_code == 201, r.text
        assert boxes(http) == default  # no settings: the default
        assert http.put("/v1/lanes/lane-21/settings", json={"item_area": 0.004}).status_code == 201
        assert boxes(http) == small
        r = http.post("/v1/checkout", files={"photo": ("counter.jpg", photo_jpeg, "image/jpeg")})
        assert [item["box"] for item in r.json()["items"]] != small  # another lane (none): not this lane's setting
        assert http.put("/v1/lanes/lane-21/settings", json={"item_area": None}).status_code == 200
        assert boxes(http) == default
