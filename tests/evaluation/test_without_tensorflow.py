"""``evaluate`` and ``calibrate`` run on the serve-only install: no module of ``evaluation`` may need
TensorFlow or Keras. Checked in a fresh interpreter where importing either fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK = """
import importlib, pkgutil, sys
sys.modules["tensorflow"] = None  # import tensorflow -> ImportError
sys.modules["keras"] = None
import evaluation
for info in pkgutil.iter_modules(evaluation.__path__):
    importlib.import_module(f"evaluation.{info.name}")
from service.cli import build_parser
parser = build_parser()
for command in ("evaluate", "calibrate"):
    try:
        parser.parse_args([command, "--help"])
    except SystemExit as exit:
        assert exit.code == 0, (command, exit.code)
    print(f"loaded {command}")
"""


def test_every_evaluation_module_and_command_loads_without_tensorflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "loaded evaluate" in result.stdout and "loaded calibrate" in result.stdout
