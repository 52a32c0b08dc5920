"""The HTTP API through FastAPI's TestClient, with a real (untrained) LiteRT model and real JPEGs."""

from tests.conftest import make_jpeg


def files(*seeds, field="images"):
    return [(field, (f"{s}.jpg", make_jpeg(s), "image/jpeg")) for s in seeds]


def test_enrol_then_recognise_multipart_and_raw(client):
    r = client.post("/v1/skus/milk-1/images", files=files(1, 2), data={"name": "Arla milk"})
    assert r.status_code == 201 and len(r.json()["image_ids"]) == 2
    r = client.post("/v1/recognize", files=files(2, field="image"))
    body = r.json()
    assert r.status_code == 200 and body["sku"] == "milk-1" and body["decision"] == "known"
    assert body["name"] == "Arla milk" and body["score"] > 0.999 and body["model_version"]
    r = client.post("/v1/recognize", content=make_jpeg(1), headers={"Content-Type": "image/jpeg"})
    assert r.json()["sku"] == "milk-1"


def test_unknown_when_below_threshold(make_client):
    client = make_client(threshold=0.999)
    client.post("/v1/skus/milk/images", files=files(1))
    body = client.post("/v1/recognize", files=files(50, field="image")).json()
    assert body["decision"] == "unknown" and body["sku"] is None and body["matches"][0]["sku"] == "milk"


def test_batch_answers_in_order(client):
    client.post("/v1/skus/a/images", files=files(1))
    client.post("/v1/skus/b/images", files=files(2))
    r = client.post("/v1/recognize/batch", files=files(2, 1, 2))
    assert [x["sku"] for x in r.json()["results"]] == ["b", "a", "b"]


def test_sku_crud_and_paging(client):
    assert (
        client.put("/v1/skus/apple", json={"name": "Apple", "price": 0.5, "attributes": {"kg": True}}).status_code
        == 201
    )
    r = client.put("/v1/skus/apple", json={"name": "Red apple"})
    assert r.status_code == 200 and r.json()["name"] == "Red apple"
    for i in range(3):
        client.put(f"/v1/skus/p{i}", json={"name": f"P{i}"})
    page = client.get("/v1/skus", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 4 and [s["sku"] for s in page["items"]] == ["p0", "p1"]
    ids = client.post("/v1/skus/apple/images", files=files(7)).json()["image_ids"]
    got = client.get("/v1/skus/apple").json()
    assert got["image_ids"] == ids and got["image_count"] == 1
    image = client.get(f"/v1/skus/apple/images/{ids[0]}")
    assert image.status_code == 200 and image.content == make_jpeg(7) and image.headers["content-type"] == "image/jpeg"
    assert client.delete(f"/v1/skus/apple/images/{ids[0]}").status_code == 204
    assert client.get("/v1/skus/apple").json()["image_ids"] == []
    assert client.delete("/v1/skus/apple").status_code == 204
    assert client.get("/v1/skus/apple").status_code == 404


def test_delete_makes_it_unknown(client):
    client.post("/v1/skus/milk/images", files=files(1))
    client.delete("/v1/skus/milk")
    body = client.post("/v1/recognize", files=files(1, field="image")).json()
    assert body["decision"] == "unknown" and body["matches"] == []


def error(r):
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == r.status_code
    return body["error"]


def test_errors_have_one_shape_and_say_what_was_received(make_client):
    client = make_client(max_upload_bytes=200_000)
    e = error(client.post("/v1/recognize", content=b"hello", headers={"Content-Type": "image/jpeg"}))
    assert e["code"] == "unreadable_image" and "5 bytes" in e["message"]
    e = error(client.post("/v1/recognize", content=b"hello", headers={"Content-Type": "text/plain"}))
    assert e["status"] == 415 and "text/plain" in e["message"]
    e = error(client.post("/v1/recognize", content=b"x" * 300_000, headers={"Content-Type": "image/jpeg"}))
    assert e["status"] == 413
    assert error(client.get("/v1/skus/nope"))["code"] == "sku_not_found"
    assert error(client.delete("/v1/skus/nope/images/5"))["status"] == 404
    e = error(client.put("/v1/skus/x", json={"name": "X", "colour": "red"}))
    assert e["status"] == 422 and "colour" in e["message"]
    e = error(client.put("/v1/skus/bad..%20id", json={"name": "X"}))
    assert e["status"] == 422
    e = error(client.post("/v1/recognize", files={"photo": ("a.jpg", make_jpeg(1), "image/jpeg")}))
    assert e["status"] == 422 and "'image'" in e["message"] and "photo" in e["message"]


def test_bad_image_in_enrolment_stores_nothing(client):
    r = client.post("/v1/skus/milk/images", files=files(1) + [("images", ("x.jpg", b"garbage", "image/jpeg"))])
    assert r.status_code == 400 and "image 2 of 2" in r.json()["error"]["message"]
    assert client.get("/v1/skus/milk").status_code == 404
    assert client.get("/readyz").json()["reference_images"] == 0


def test_model_mismatch_is_409(make_client, other_model_dir):
    client = make_client()
    client.post("/v1/skus/milk/images", files=files(1))
    client.__exit__(None, None, None)
    other = make_client(model=other_model_dir)
    e = error(other.post("/v1/recognize", files=files(1, field="image")))
    assert e["status"] == 409 and "reindex" in e["message"]
    assert error(other.post("/v1/skus/x/images", files=files(2)))["status"] == 409
    ready = other.get("/readyz")
    assert ready.status_code == 503
    data_dir = str(other.app.state.skulens.settings.data_dir)
    for text in (e["message"], ready.text):  # no server paths in any response
        assert data_dir not in text and "/tmp" not in text and "--data-dir" not in text


def test_health_ready_metrics_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/v1/skus/milk/images", files=files(1))
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["skus"] == 1 and ready["reference_images"] == 1
    client.post("/v1/recognize", files=files(1, field="image"))
    text = client.get("/metrics").text
    assert 'skulens_requests_total{method="POST",route="/v1/recognize",status="200"} 1.0' in text
    assert "skulens_gallery_reference_images 1.0" in text
    assert "# TYPE skulens_inference_batches_total counter" in text  # counters are counters
    assert "# TYPE skulens_inference_images_total counter" in text and "skulens_inference_images_total 2.0" in text
    assert "# TYPE skulens_request_seconds histogram" in text
    assert "/v1/recognize" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_concurrent_requests_are_micro_batched(make_client):
    """Many recognitions at once share inference calls and all get the right answer."""
    import concurrent.futures

    client = make_client(max_batch=8, max_wait_ms=20)
    client.post("/v1/skus/a/images", files=files(1))
    client.post("/v1/skus/b/images", files=files(2))
    state = client.app.state.skulens
    before = state.batcher.batches
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda s: client.post("/v1/recognize", files=files(s, field="image")).json()["sku"], [1, 2] * 8)
        )
    assert answers == ["a", "b"] * 8
    assert state.batcher.batches - before < 16


def test_queue_full_answers_503_with_retry_after(make_client):
    client = make_client(max_queue=2, max_images_per_request=2)
    client.app.state.skulens.batcher._queued_images = 1  # one image already waiting
    r = client.post("/v1/recognize/batch", files=files(1, 2))
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert "1 images are waiting for inference (limit 2)" in r.json()["error"]["message"]


def test_enrolment_needs_multipart(client):
    r = client.post("/v1/skus/milk/images", content=make_jpeg(1), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 415 and "multipart/form-data with field 'images'" in r.json()["error"]["message"]
    assert client.get("/v1/skus/milk").status_code == 404


def test_image_whose_file_goes_during_a_get_answers_404(client):
    """A GET racing a DELETE: the record was read, the file is gone."""
    image_id = client.post("/v1/skus/milk/images", files=files(1)).json()["image_ids"][0]
    state = client.app.state.skulens
    state.gallery.blobs.path_for(state.gallery.store.get_image("milk", image_id).sha256).unlink()
    r = client.get(f"/v1/skus/milk/images/{image_id}")
    assert r.status_code == 404 and error(r)["code"] == "image_not_found"


def test_tta_flip_setting_still_recognises(make_client):
    """Flip test-time augmentation (SKULENS_TTA_FLIP): each crop embedded as itself and mirrored."""
    client = make_client(tta_flip=True)
    client.post("/v1/skus/a/images", files=files(1))
    client.post("/v1/skus/b/images", files=files(2))
    state = client.app.state.skulens
    before = state.batcher.images
    r = client.post("/v1/recognize/batch", files=files(2, 1))
    assert [x["sku"] for x in r.json()["results"]] == ["b", "a"]
    assert state.batcher.images - before == 4  # two crops, each also mirrored
