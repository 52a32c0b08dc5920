"""`skulens enrol --voc` on a generated LabelImg folder, and idempotent enrolment on every path:
content already a reference image of the SKU is reported, never stored twice."""

import io

import numpy as np
from PIL import Image

from embedder.artifact import load_artifact
from gallery.gallery import Gallery
from service.cli import main
from tests.conftest import make_jpeg

VOC_XML = """<annotation><folder>shots</folder><filename>{filename}</filename>
<path>/home/annotator/shots/{filename}</path><size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
OBJECT = (
    "<object><name>{label}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
    "<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
)


def shelf_photo(seed: int, size=(320, 240)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.kron(rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3)), np.ones((16, 16, 1))).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def voc_folder(root):
    root.mkdir()
    boxes_1 = [
        ("milk", (10, 10, 110, 150)),
        ("Choc Bar", (150, 20, 300, 120)),
        ("milk", (200, 130, 300, 230)),
        ("milk", (5, 5, 9, 9)),
    ]  # too small
    boxes_2 = [("bad label", (10, 10, 100, 100)), ("milk", (-20, 40, 120, 400))]  # clipped to the image
    for name, seed, boxes in (("one.jpg", 1, boxes_1), ("two.jpg", 2, boxes_2)):
        (root / name).write_bytes(shelf_photo(seed))
        objects = "".join(OBJECT.format(label=label, x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for label, b in boxes)
        (root / name.replace(".jpg", ".xml")).write_text(VOC_XML.format(filename=name, w=320, h=240, objects=objects))
    (root / "lost.xml").write_text(VOC_XML.format(filename="lost.jpg", w=320, h=240, objects=""))
    (root / "broken.xml").write_text("<annotation><object>")
    labels = root.parent / "labels.csv"
    labels.write_text("label,sku\nChoc Bar,choc-bar\nmilk,milk\n")
    return root, labels


def test_voc_import_enrols_every_usable_box_and_a_rerun_changes_nothing(tmp_path, tiny_model_dir, capsys):
    folder, labels = voc_folder(tmp_path / "voc")
    data = tmp_path / "data"
    command = [
        "enrol",
        "--voc",
        str(folder),
        "--label-map",
        str(labels),
        "--data-dir",
        str(data),
        "--model",
        str(tiny_model_dir),
    ]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "enrolled 4 images of 2 SKUs" in out and "VOC: 4 boxes to enrol, 4 skipped" in out
    assert "one.xml object 4 (milk): box [5, 5, 9, 9] is smaller than 8 px" in out
    assert "two.xml object 1 (bad label): label 'bad label' is not in the label map" in out and "--label-map" in out
    assert "lost.xml: its image 'lost.jpg' is not beside it" in out and "broken.xml: not a readable XML file" in out
    artifact = load_artifact(tiny_model_dir)
    gallery = Gallery(data, artifact.version, artifact.embedding_dim)
    milk, choc = gallery.get_sku("milk"), gallery.get_sku("choc-bar")
    assert (len(milk.image_ids), len(choc.image_ids)) == (3, 1)
    width, height = Image.open(io.BytesIO(gallery.read_image("choc-bar", choc.image_ids[0])[0])).size
    assert (width, height) == (150, 100)  # the box, cropped
    clipped = Image.open(io.BytesIO(gallery.read_image("milk", milk.image_ids[-1])[0])).size
    assert clipped == (120, 200)  # x from 0 (not -20) to 120, y from 40 to 240 (not 400)
    before = gallery.counts()
    gallery.close(snapshot=False)
    assert main(command) == 0  # again: everything is already there
    out = capsys.readouterr().out
    assert "enrolled 0 images of 0 SKUs" in out and "4 already there (not stored twice)" in out
    gallery = Gallery(data, artifact.version, artifact.embedding_dim)
    assert gallery.counts() == before == (2, 4)
    gallery.close(snapshot=False)


def test_with_a_label_map_a_label_not_in_it_is_skipped_not_its_own_sku(tmp_path):
    """The map is the list of SKUs to import: a label it lacks (a typo, a class not for sale) is
    skipped with the reason, never enrolled under a SKU id of the label's own text."""
    from service.voc import plan_voc, read_label_map

    folder, labels = voc_folder(tmp_path / "voc")
    labels.write_text("label,sku\nChoc Bar,choc-bar\n")  # no line for 'milk'
    crops, skipped = plan_voc(folder, read_label_map(labels))
    assert set(crops) == {"choc-bar"}
    why = dict(skipped)
    assert "label 'milk' is not in the label map" in why["one.xml object 1 (milk)"]
    assert "--label-map" in why["one.xml object 1 (milk)"]
    assert "label 'bad label' is not in the label map" in why["two.xml object 1 (bad label)"]
    crops, _ = plan_voc(folder)  # without a map a label is its SKU id, as before
    assert set(crops) == {"milk"}


def test_http_enrolment_is_idempotent_per_content(client):
    first = client.post(
        "/v1/skus/tea/images",
        files=[("images", ("a.jpg", make_jpeg(5), "image/jpeg")), ("images", ("b.jpg", make_jpeg(5), "image/jpeg"))],
    )
    assert first.status_code == 201
    ids = first.json()["image_ids"]
    assert ids[0] == ids[1] and first.json()["already_present"] == []  # the same photo twice: stored once
    again = client.post(
        "/v1/skus/tea/images",
        files=[("images", ("a.jpg", make_jpeg(5), "image/jpeg")), ("images", ("c.jpg", make_jpeg(6), "image/jpeg"))],
    )
    assert again.status_code == 201
    assert again.json()["image_ids"][0] == ids[0] and again.json()["already_present"] == [ids[0]]
    third = client.post("/v1/skus/tea/images", files=[("images", ("a.jpg", make_jpeg(5), "image/jpeg"))])
    assert third.status_code == 200 and third.json()["already_present"] == [ids[0]]
    assert client.get("/v1/skus/tea").json()["image_count"] == 2
    other = client.post("/v1/skus/coffee/images", files=[("images", ("a.jpg", make_jpeg(5), "image/jpeg"))])
    assert other.status_code == 201 and other.json()["already_present"] == []  # another SKU: its own reference


def test_folder_enrolment_rerun_stores_nothing(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "photos"
    (folder / "apple").mkdir(parents=True)
    for i in range(2):
        (folder / "apple" / f"{i}.jpg").write_bytes(make_jpeg(40 + i))
    command = ["enrol", str(folder), "--data-dir", str(tmp_path / "data"), "--model", str(tiny_model_dir)]
    assert main(command) == 0 and "enrolled 2 images of 1 SKUs" in capsys.readouterr().out
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "enrolled 0 images of 0 SKUs" in out and "2 already there (not stored twice)" in out


def test_the_loser_of_an_enrolment_race_is_told_its_photo_was_already_there(tmp_path):
    """Two workers enrol the same photo at once: both sort it out as new (neither has committed), the
    first stores it, the second's transaction finds it there. The second must report it as already
    present (the route then answers 200), not as new under the winner's id."""
    from service import enrolment

    gallery = Gallery(tmp_path, "model-a", 8)
    decoded = [enrolment.decode_upload(make_jpeg(1), 32, 10_000_000)]
    vector = np.eye(8, dtype=np.float32)[:1]
    winner = enrolment.dedup(gallery, "milk", decoded)
    loser = enrolment.dedup(gallery, "milk", decoded)  # before the winner commits: nothing there yet
    assert winner.fresh and loser.fresh
    won = winner.result(enrolment.commit(gallery, "milk", enrolment.prepare(winner.fresh, 0), vector))
    lost = loser.result(enrolment.commit(gallery, "milk", enrolment.prepare(loser.fresh, 0), vector))
    assert won.already_present == [] and len(won.image_ids) == 1
    assert lost.image_ids == won.image_ids and lost.already_present == won.image_ids
    assert list(gallery.get_sku("milk").image_ids) == won.image_ids
    gallery.close()
