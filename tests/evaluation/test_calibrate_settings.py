"""``skulens calibrate`` reads the gallery settings from the environment and its own flags, not from service.cli."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.cli import _calibrate_settings
from service.cli import build_parser


def parse(*argv: str):
    return build_parser().parse_args(["calibrate", "queries", *argv])


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SKULENS_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("SKULENS_INDEX_KIND", "hnsw")
    settings = _calibrate_settings(parse("--data-dir", str(tmp_path / "from-flag")))
    assert settings.data_dir == tmp_path / "from-flag"
    assert settings.index_kind == "hnsw"
    assert settings.model is None


def test_the_decoding_threads_flag_is_not_the_servers_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKULENS_WORKERS", raising=False)
    args = parse("--workers", "7", "--model", "some/model")
    assert args.workers == 7
    settings = _calibrate_settings(args)
    assert settings.workers == 1
    assert settings.model == Path("some/model")
