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
    assert plan.names["kiwi"] == "Kiwi" and plan.prices["kiwi"] == 0.3
    reasons = " | ".join(f"{what}: {why}" for what, why in plan.skipped)
    assert "invalid SKU id 'bad sku'" in reasons and "missing.jpg: file does not exist" in reasons
    assert "not a number: 'cheap'" in reasons


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


def test_enrol_needs_a_source():
    with pytest.raises(SystemExit, match="folder"):
        main(["enrol"])


def test_serve_refuses_open_network_bind():
    with pytest.raises(SystemExit, match="--api-keys"):
        main(["serve", "--host", "0.0.0.0"])


def test_parser_has_every_command():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("serve", "enrol", "enroll", "recognize", "reindex", "info"):
        assert name in commands
