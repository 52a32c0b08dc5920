"""The command line, in-process: enrol (folder and CSV), recognize, info."""

import json

import pytest

from service.cli import build_parser, main
from service.commands import plan_enrolment
from tests.conftest import make_jpeg


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    for sku, seeds in {"apple": [1, 2], "pear": [3], "bad sku": [4]}.items():
        (folder / sku).mkdir(parents=True)
        for s in seeds:
            (folder / sku / f"{s}.jpg").write_bytes(make_jpeg(s))
    (folder / "pear" / "broken.jpg").write_bytes(b"nope")
    return folder


def test_plan_reports_what_is_skipped_and_why(photos, tmp_path):
    csv = tmp_path / "extra.csv"
    (tmp_path / "kiwi.jpg").write_bytes(make_jpeg(9))
    csv.write_text("sku,name,price,image_path\nkiwi,Kiwi,0.3,kiwi.jpg\nkiwi,Kiwi,0.3,missing.jpg\nfig,Fig,cheap,\n")
    plan = plan_enrolment(str(photos), str(csv), None)
    assert {k: len(v) for k, v in plan.images.items()} == {"apple": 2, "pear": 2, "kiwi": 1}
    assert plan.names["kiwi"] == "Kiwi" and plan.prices["kiwi"] == 30  # cents
    reasons = " | ".join(f"{what}: {why}" for what, why in plan.skipped)
    assert "invalid SKU id 'bad sku'" in reasons and "missing.jpg: file does not exist" in reasons
    assert "price 'cheap' is not a decimal number" in reasons


def test_enrol_recognize_info(photos, tmp_path, tiny_model_dir, capsys):
    common = ["--data-dir", str(tmp_path / "data"), "--model", str(tiny_model_dir)]
    assert main(["enroll", str(photos), *common]) == 0
    out = capsys.readouterr().out
    assert "enrolled 3 images of 2 SKUs" in out and "broken.jpg" in out and "bad sku" in out
    query = tmp_path / "q.jpg"
    query.write_bytes(make_jpeg(3))
    assert main(["recognize", str(query), "--json", *common]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["sku"] == "pear" and row["decision"] == "known"
    assert main(["recognise", str(query), str(tmp_path / "nothing.jpg"), *common]) == 1  # table, one error
    assert "ERROR" in capsys.readouterr().out
    assert main(["info", "--json", *common]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["skus"] == 2 and info["reference_images"] == 3 and info["index_vectors"] == 3


def test_a_model_the_gallery_has_no_vectors_from_is_one_clear_line(photos, tmp_path, tiny_model_dir, capsys):
    from service.startup import EXIT_STATUS

    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["enrol", str(photos), *data, "--model", str(tiny_model_dir)]) == 0
    query = tmp_path / "q.jpg"
    query.write_bytes(make_jpeg(3))
    capsys.readouterr()
    assert (
        main(["recognize", str(query), *data, "--model", "float32"]) == EXIT_STATUS
    )  # the shipped model: not reindexed
    err = capsys.readouterr().err
    assert err.startswith("skulens: ") and "have no vector from model" in err and "skulens reindex" in err, err
    assert "Traceback" not in err


def test_enrol_needs_a_source():
    with pytest.raises(SystemExit, match="folder"):
        main(["enrol"])


def test_serve_refuses_open_network_bind(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--api-keys" in capsys.readouterr().err


def test_parser_has_every_command():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("serve", "enrol", "enroll", "recognize", "reindex", "info"):
        assert name in commands


def test_enrol_keeps_metadata_it_is_not_given_and_skips_unreadable_files(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from pathlib import Path

    from gallery.gallery import Gallery
    from embedder.artifact import load_artifact

    data = tmp_path / "data"
    artifact = load_artifact(tiny_model_dir)
    g = Gallery(data, artifact.version, artifact.embedding_dim)
    g.put_sku("apple", "Apple", 50, {"organic": True})
    g.close(snapshot=False)
    folder = tmp_path / "photos"
    (folder / "apple").mkdir(parents=True)
    for name, seed in (("1.jpg", 1), ("locked.jpg", 2), ("3.jpg", 3)):
        (folder / "apple" / name).write_bytes(make_jpeg(seed))
    names = tmp_path / "names.csv"
    names.write_text("sku,name\napple,Red apple\n")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.jpg":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    common = ["--data-dir", str(data), "--model", str(tiny_model_dir)]
    assert main(["enrol", str(folder), "--names", str(names), *common]) == 0
    out = capsys.readouterr().out
    assert "enrolled 2 images of 1 SKUs" in out and "locked.jpg: Permission denied" in out
    g = Gallery(data, artifact.version, artifact.embedding_dim)
    sku = g.get_sku("apple")
    g.close(snapshot=False)
    assert (sku.name, sku.price_minor, sku.attributes, len(sku.image_ids)) == ("Red apple", 50, {"organic": True}, 2)


def test_recognize_honours_threshold_and_top_k_from_the_environment(
    photos, tmp_path, tiny_model_dir, capsys, monkeypatch
):
    common = ["--data-dir", str(tmp_path / "data"), "--model", str(tiny_model_dir)]
    assert main(["enrol", str(photos), *common]) == 0
    query = tmp_path / "q.jpg"
    query.write_bytes(make_jpeg(50))  # not enrolled: its best score is below 0.99999
    capsys.readouterr()
    monkeypatch.setenv("SKULENS_THRESHOLD", "0.99999")
    monkeypatch.setenv("SKULENS_TOP_K", "1")
    assert main(["recognize", str(query), "--json", *common]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["decision"] == "unknown" and row["score"] < 0.99999 and len(row["matches"]) == 1
    assert main(["recognize", str(query), "--json", "--top-k", "2", "--threshold", "-1", *common]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["decision"] == "known" and len(row["matches"]) == 2  # flags still win over the environment


def test_faiss_loader_messages_are_debug_not_info():
    import subprocess
    import sys

    script = "import logging, sys; logging.basicConfig(level=getattr(logging, sys.argv[1])); import gallery.search"
    info = subprocess.run([sys.executable, "-c", script, "INFO"], capture_output=True, text=True, timeout=120)
    debug = subprocess.run([sys.executable, "-c", script, "DEBUG"], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "faiss" not in info.stderr.lower(), info.stderr
    assert "DEBUG:faiss.loader:Loading faiss" in debug.stderr


@pytest.mark.parametrize("case", ["bad key file", "missing model", "data dir not writable", "bad setting"])
def test_start_up_failures_are_one_clear_line(case, tmp_path, tiny_model_dir):
    import os
    import subprocess
    import sys

    args = ["--data-dir", str(tmp_path / "data"), "--model", str(tiny_model_dir)]
    env = dict(os.environ)
    if case == "bad key file":
        keys = tmp_path / "keys"
        keys.write_text("admin short\n")
        args += ["--api-keys", str(keys)]
        expected = "bad API keys file"
    elif case == "missing model":
        args[3] = str(tmp_path / "no-model")
        expected = "no skulens model at"
    elif case == "data dir not writable":
        (tmp_path / "file").write_text("")
        args[1] = str(tmp_path / "file" / "data")  # under a file: can never be created
        expected = "is not writable"
    else:
        env["SKULENS_MAX_QUEUE"] = "many"
        expected = "invalid setting: max_queue"
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2, done.stderr[-500:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr, done.stderr[-800:]
