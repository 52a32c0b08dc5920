"""POST /v1/checkout with SKULENS_COUNTER_SEGMENTER=learned (the default): the shipped item-centre model
(counter/centres.py) cuts the counter photo's blobs, through the real app; ``classical`` stays the other choice."""

import pytest

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from service import checkout as checkout_module
from tests.service.test_checkout_split import checkout, counter


def test_a_counter_photo_through_the_learned_segmenter(make_client):
    learned = make_client(catalogue_views=0, counter_recognised_split=False)  # learned by default
    classical = make_client(catalogue_views=0, counter_segmenter="classical", counter_recognised_split=False)
    apart, background = counter([(40, 100, (200, 30, 30)), (190, 100, (30, 60, 190)), (340, 100, (230, 200, 20))])
    for client in (learned, classical):
        client.put("/v1/lanes/a/background", content=background, headers={"Content-Type": "image/png"})
        client.put("/v1/lanes/a/settings", json={"item_area": 0.09})  # 100x160 px cartons in 480x360
        client.put("/v1/skus/tea", json={"name": "Tea", "price": "2.35"})
        client.post("/v1/skus/tea/images", files=[("images", ("t.png", apart, "image/png"))])
    by_learned, by_classical = checkout(learned, apart, "a"), checkout(classical, apart, "a")
    assert len(by_learned["items"]) == 3 and by_learned["segmentation"] == "lane_background"
    assert [i["box"] for i in by_learned["items"]] == [i["box"] for i in by_classical["items"]]  # one item a blob
    assert type(checkout_module.load_segmenter("learned")).__name__ == "LearnedSegmenter"
    assert type(checkout_module.load_segmenter("classical")).__name__ == "BackgroundSegmenter"


def test_an_unknown_segmenter_is_refused_at_start_up(make_client):
    with pytest.raises(Exception, match="counter_segmenter"):
        make_client(counter_segmenter="neural")
