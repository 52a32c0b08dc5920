"""The shipped models by name: ``--model int8_float_head`` (or ``SKULENS_MODEL``) serves the mixed-precision
file shipped beside the default, with its own calibration; a folder of that name still wins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embedder.artifact import SHIPPED_MODELS, ModelNotFound, default_model_dir, load_artifact, shipped_model_dir
from service.model_source import resolve_model


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_every_shipped_model_loads_with_its_own_calibration(tmp_path, name):
    artifact = resolve_model(Path(name), tmp_path)
    assert artifact.path == shipped_model_dir(name)
    # calibrated on the runner-up score (gallery.open_set_score): its gamma, and no lookalike beta
    assert artifact.trained and artifact.threshold is not None and artifact.runner_up_gamma > 0
    assert artifact.lookalike_beta == 0 and "runner_up" in artifact.extra["calibration"]
    assert artifact.precision == name
    assert artifact.extra["calibration"]["provenance"]["data"]["fold_results"] == f"result-{name}.json"


def test_the_default_is_the_float32_one(tmp_path):
    assert resolve_model(None, tmp_path).path == default_model_dir() == shipped_model_dir("float32")


def test_a_folder_of_that_name_wins_and_unknown_names_are_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(shipped_model_dir("float32"), tmp_path / "int8_float_head")
    assert resolve_model(Path("int8_float_head"), tmp_path).version == load_artifact(default_model_dir()).version
    with pytest.raises(ModelNotFound, match="no skulens model at 'int8'.*shipped model: float32, int8_float_head"):
        resolve_model(Path("int8"), tmp_path)
    with pytest.raises(ModelNotFound, match="no shipped model called 'fp16'"):
        shipped_model_dir("fp16")
