"""POST /v1/checkout end to end on the real server (uvicorn, loopback): a counter photo in, the right
basket and total out; unknown and unpriced items in needs_attention; crops likewise.

The test model is untrained, so each item is enrolled with the very crop the server will cut from the
photo (found here by the same segmenter) and the threshold is 0.999: only an exact match is known,
and a product that was never enrolled stays unknown."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
cv2 = pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter.boxes import match  # noqa: E402
from counter.scenes import Product, make_scene  # noqa: E402
from counter.segment import BackgroundSegmenter  # noqa: E402
from tests.counter.toy_products import studio  # noqa: E402

PRODUCTS = [
    Product("red-apple", studio((200, 30, 30), "disc", texture_seed=1)),
    Product("green-pear", studio((60, 160, 40), "disc", texture_seed=2)),
    Product("blue-carton", studio((30, 60, 190), "box", texture_seed=3)),
    Product("yellow-carton", studio((230, 200, 20), "box", texture_seed=4)),
]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    server = Server(
        tmp_path_factory.mktemp("checkout") / "data",
        tiny_model_dir,
        ["--threshold", "0.999"],
        env={"SKULENS_CATALOGUE_VIEWS": "0"},
    ).start()
    yield server
    server.stop()


def test_a_counter_photo_gives_the_basket_and_total(server):
    # green-pear, red-apple, blue-carton, red-apple, yellow-carton, all apart, on laminate
    scene = make_scene(PRODUCTS, 3, n_items=5, touching=False, surface_kind="laminate")
    boxes = BackgroundSegmenter().segment(scene.photo)
    pairs = dict(match(boxes, [item.box for item in scene.items]))
    assert len(pairs) == len(boxes) == 5
    truth = [scene.items[pairs[i]].sku for i in range(len(boxes))]  # in reading order
    assert sorted(truth) == ["blue-carton", "green-pear", "red-apple", "red-apple", "yellow-carton"]
    with server.client() as http:
        assert http.put("/v1/skus/red-apple", json={"name": "Red apple", "price": "0.35"}).status_code == 201
        assert http.put("/v1/skus/blue-carton", json={"name": "Blue carton", "price": 1.2}).status_code == 201
        assert http.put("/v1/skus/yellow-carton", json={"name": "Yellow carton"}).status_code == 201  # no price
        for index, box in enumerate(boxes):
            if truth[index] != "green-pear":  # never enrolled: must come out unknown
                crop = scene.photo[box.y0 : box.y1, box.x0 : box.x1]
                r = http.post(f"/v1/skus/{truth[index]}/images", files=[("images", ("c.png", png(crop), "image/png"))])
                assert r.status_code == 201, r.text
        r = http.post(
            "/v1/checkout", files={"photo": ("counter.png", png(scene.photo), "image/png")}, data={"lane": "lane-3"}
        )
    assert r.status_code == 200, r.text
    out = r.json()
    assert [item["box"] for item in out["items"]] == [b.as_list() for b in boxes]
    expected_skus = [None if sku == "green-pear" else sku for sku in truth]
    assert [item["sku"] for item in out["items"]] == expected_skus
    prices = {"red-apple": "0.35", "blue-carton": "1.20"}
    assert [item["unit_price"] for item in out["items"]] == [prices.get(sku) for sku in expected_skus]
    lines = {line["sku"]: (line["quantity"], line["unit_price"], line["amount"]) for line in out["lines"]}
    assert lines == {"red-apple": (2, "0.35", "0.70"), "blue-carton": (1, "1.20", "1.20")}
    assert out["total"] == "1.90" and out["currency"] == "EUR"
    attention = {(a["index"], a["reason"]) for a in out["needs_attention"]}
    assert attention == {(truth.index("green-pear"), "unknown"), (truth.index("yellow-carton"), "no_price")}
    assert out["segmentation"] == "plain_counter" and "lane-3" in out["note"]
    assert out["model_version"]


def test_crops_give_the_basket_in_posted_order(server):
    with server.client() as http:
        http.put("/v1/skus/tea", json={"name": "Tea", "price": "2.35"})
        assert (
            http.post("/v1/skus/tea/images", files=[("images", ("t.jpg", make_jpeg(31), "image/jpeg"))]).status_code
            == 201
        )
        crops = [make_jpeg(31), make_jpeg(99), make_jpeg(31)]
        r = http.post("/v1/checkout", files=[("images", (f"{i}.jpg", c, "image/jpeg")) for i, c in enumerate(crops)])
        assert r.status_code == 200, r.text
        out = r.json()
        assert [(i["sku"], i["box"], i["decision"]) for i in out["items"]] == [
            ("tea", None, "known"),
            (None, None, "unknown"),
            ("tea", None, "known"),
        ]
        assert out["lines"] == [{"sku": "tea", "name": "Tea", "quantity": 2, "unit_price": "2.35", "amount": "4.70"}]
        assert out["total"] == "4.70" and [a["index"] for a in out["needs_attention"]] == [1]
        assert out["segmentation"] is None


def test_an_empty_counter_is_said_so(server):
    scene = make_scene(PRODUCTS, 5, n_items=0, touching=False, surface_kind="laminate")
    with server.client() as http:
        r = http.post("/v1/checkout", files={"photo": ("empty.png", png(scene.background), "image/png")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["items"] == [] and out["total"] == "0.00"
    assert [a["reason"] for a in out["needs_attention"]] == ["no_items_found"]
