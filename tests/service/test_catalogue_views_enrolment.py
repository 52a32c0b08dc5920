"""Catalogue-photo views at enrolment: a studio packshot on white is stored as one reference image
whose vectors are the photo's own plus those of its synthetic store-like views."""

import io

import numpy as np
from PIL import Image

from service.cli import main
from tests.conftest import make_jpeg


def packshot_jpeg(seed: int = 0, side: int = 160) -> bytes:
    """A product (coloured blocks) in the middle of a white studio background."""
    image = np.full((side, side, 3), 255, np.uint8)
    block = np.random.default_rng(seed).integers(0, 200, size=(6, 4, 3), dtype=np.uint8)
    image[30:130, 50:110] = np.kron(block, np.ones((17, 15, 1), np.uint8))[:100, :60]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def enrol(client, sku, data):
    r = client.post(f"/v1/skus/{sku}/images", files=[("images", ("p.jpg", data, "image/jpeg"))])
    assert r.status_code == 201, r.text
    return r.json()["image_ids"]


def index(client):
    info = client.get("/v1/admin/info").json()
    return info["index_vectors"], info["index_images"]


def test_packshot_gets_views_normal_photo_does_not_and_delete_removes_all(client):
    ids = enrol(client, "carton", packshot_jpeg())
    assert len(ids) == 1 and index(client) == (9, 1)  # the photo + 8 views, one reference image
    assert client.get("/v1/skus/carton").json()["image_count"] == 1
    enrol(client, "shelf", make_jpeg(3))
    assert index(client) == (10, 2)  # an ordinary photo: one row
    r = client.post("/v1/recognize", files={"image": ("q.jpg", packshot_jpeg(), "image/jpeg")}).json()
    assert r["sku"] == "carton" and [m["sku"] for m in r["matches"]].count("carton") == 1  # one match per SKU
    assert client.delete(f"/v1/skus/carton/images/{ids[0]}").status_code == 204
    assert index(client) == (1, 1)


def test_setting_zero_turns_views_off(make_client):
    client = make_client(catalogue_views=0)
    enrol(client, "carton", packshot_jpeg())
    assert index(client) == (1, 1)


def test_reindex_and_a_restart_reproduce_the_views(make_client, tmp_path, other_model_dir):
    client = make_client()
    enrol(client, "carton", packshot_jpeg())
    enrol(client, "shelf", make_jpeg(3))
    client.__exit__(None, None, None)
    again = make_client()  # from the snapshot, then the catalogue
    assert index(again) == (10, 2)
    again.__exit__(None, None, None)
    assert main(["reindex", "--data-dir", str(tmp_path / "data"), "--model", str(other_model_dir)]) == 0
    other = make_client(model=other_model_dir)
    assert index(other) == (10, 2)
    assert (
        other.post("/v1/recognize", files={"image": ("q.jpg", packshot_jpeg(), "image/jpeg")}).json()["sku"] == "carton"
    )


def test_command_line_enrolment_uses_the_same_pipeline(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "photos"
    (folder / "carton").mkdir(parents=True)
    (folder / "carton" / "studio.jpg").write_bytes(packshot_jpeg())
    (folder / "carton" / "store.jpg").write_bytes(make_jpeg(5))
    common = ["--data-dir", str(tmp_path / "data"), "--model", str(tiny_model_dir)]
    assert main(["enrol", str(folder), *common]) == 0
    assert main(["info", "--json", *common]) == 0
    out = capsys.readouterr().out
    info = __import__("json").loads(out[out.index("{") :])
    assert info["reference_images"] == 2 and info["index_images"] == 2 and info["index_vectors"] == 10


def test_views_never_overflow_the_inference_queue(make_client):
    """Two packshots are 18 rows to embed; the queue holds 8: they go through in pieces."""
    client = make_client(max_queue=8, max_images_per_request=4)
    r = client.post(
        "/v1/skus/carton/images", files=[("images", (f"p{i}.jpg", packshot_jpeg(i), "image/jpeg")) for i in range(2)]
    )
    assert r.status_code == 201 and len(r.json()["image_ids"]) == 2
    assert index(client) == (18, 2)
