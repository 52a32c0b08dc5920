"""POST /v1/checkout with SKULENS_COUNTER_RECOGNISED_SPLIT on (the default): the recogniser decides one item
or two (service/checkout_split.py, counter/recognised.py); where nothing is proposed, nothing changes."""

import io

import numpy as np
import pytest
from PIL import Image

from gallery.types import Match, Recognition

cv2 = pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from service.checkout_split import similarities  # noqa: E402


def answer(*matches: tuple[str, float]) -> Recognition:
    return Recognition(matches[0][0], matches[0][1], True, tuple(Match(s, v) for s, v in matches), 0.5, matches[0][1])


def test_similarities_per_sku_from_each_answers_matches():
    rows = similarities([answer(("tea", 0.9), ("milk", 0.4)), answer(("milk", 0.8), ("jam", 0.3))])
    # columns: jam, milk, tea; a SKU an answer does not show gets the lowest it shows
    assert rows.tolist() == [[0.4, 0.4, 0.9], [0.3, 0.8, 0.3]]
    assert similarities([]).shape == (0, 1)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def counter(cartons: list[tuple[int, int, tuple[int, int, int]]]) -> tuple[bytes, bytes]:
    """A photo of a grey counter with 100x160 px cartons at (x, y), and its empty counter."""
    rng = np.random.default_rng(0)
    background = np.clip(120 + rng.normal(0, 2, (360, 480, 1)), 0, 255).repeat(3, axis=2).astype(np.uint8)
    photo = background.copy()
    for x, y, colour in cartons:
        photo[y : y + 160, x : x + 100] = colour
        photo[y + 20 : y + 60, x + 20 : x + 80] = (250, 250, 250)  # a label
    return png(photo), png(background)


def checkout(client, photo: bytes, lane: str) -> dict:
    r = client.post("/v1/checkout", files=[("photo", ("p.png", photo, "image/png"))], data={"lane": lane})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_checkout_with_the_recogniser_deciding(make_client):
    """A lane whose items are 9 % of the photo (a 100x160 px carton in 480x360)."""
    plain = make_client(catalogue_views=0, counter_recognised_split=False)
    split = make_client(catalogue_views=0)  # on by default
    apart, background = counter([(40, 100, (200, 30, 30)), (190, 100, (30, 60, 190)), (340, 100, (230, 200, 20))])
    flush, _ = counter([(140, 100, (200, 30, 30)), (240, 100, (175, 60, 50))])  # one blob two items big
    for client in (plain, split):
        client.put("/v1/lanes/a/background", content=background, headers={"Content-Type": "image/png"})
        client.put("/v1/lanes/a/settings", json={"item_area": 0.09})
        client.put("/v1/skus/tea", json={"name": "Tea", "price": "2.35"})
        client.post("/v1/skus/tea/images", files=[("images", ("t.png", apart, "image/png"))])
    before, after = checkout(plain, apart, "a"), checkout(split, apart, "a")
    assert [i["box"] for i in after["items"]] == [i["box"] for i in before["items"]]  # nothing to decide
    assert len(after["items"]) == 3 and after["segmentation"] == "lane_background"
    assert after["total"] == before["total"]
    out = checkout(split, flush, "a")  # proposals judged by the (untrained) test model: one item or two
    assert 1 <= len(out["items"]) <= 2 and all(0 <= i["box"][0] < i["box"][2] <= 480 for i in out["items"])
    assert len(out["lines"]) + len(out["needs_attention"]) >= 1


def test_each_segmenters_cut_is_judged_with_the_settings_fitted_for_it(make_client, monkeypatch):
    """Round 9: the learned cut gets no merge proposed and a stricter split; the classical keeps round 4's."""
    from counter.recognised import CLASSICAL_SPLIT, LEARNED_SPLIT
    from counter.segment import Segmenter
    from service import checkout as checkout_module
    from service.checkout_split import plan_photo

    flush, background = counter([(140, 100, (200, 30, 30)), (240, 100, (175, 60, 50))])
    for kind, settings in (("learned", LEARNED_SPLIT), ("classical", CLASSICAL_SPLIT)):
        client = make_client(catalogue_views=0, counter_segmenter=kind)
        client.put("/v1/lanes/a/background", content=background, headers={"Content-Type": "image/png"})
        client.put("/v1/lanes/a/settings", json={"item_area": 0.09})
        planned = plan_photo(client.app.state.skulens, flush, "a")
        assert planned.plan is not None and planned.decision == settings.decision
        assert len(planned.crops.pixels) == len(planned.plan.boxes)  # every item and proposed part, one batch

    class Boxes(Segmenter):  # a segmenter that proposes nothing (not a background difference)
        def segment(self, photo, background=None):
            return []

    monkeypatch.setattr(checkout_module, "load_segmenter", lambda kind: Boxes())
    planned = plan_photo(client.app.state.skulens, flush, None)
    assert planned.plan is None and planned.decision is None and len(planned.crops.pixels) == 0
