"""The packages' import layers, read from the source (every import, at the top or inside a function).

embedder is the bottom; gallery and counter build on it; the service sits on them; evaluation (metrics,
calibration, the ``evaluate`` and ``calibrate`` commands) sits on the service's settings, and training on
evaluation. The service loads both packages' commands by name (``service.cli.PLUGINS``), so neither may
import ``service.cli``: that was a circle (issue 11). The service imports no training or evaluation
module, and evaluation no training module, so the serve-only install (without TensorFlow) never reaches
training by accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package → module prefixes none of its modules may import.
FORBIDDEN = {
    "embedder": ("gallery", "counter", "service", "training", "bench", "tests"),
    "gallery": ("counter", "service", "training", "bench", "tests"),
    "counter": ("gallery", "service", "training", "bench", "tests"),
    "service": ("evaluation", "training", "bench", "tests"),
    "evaluation": ("training", "service.cli", "bench", "tests"),
    "training": ("service.cli", "bench", "tests"),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved; ``from P import M`` counts as ``P.M`` too."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def violations(root: Path, forbidden: dict[str, tuple[str, ...]]) -> list[str]:
    """``module imports target`` for each import that crosses a layer the wrong way."""
    out = []
    for package, banned in forbidden.items():
        for path in sorted((root / package).rglob("*.py")):
            bad = {t for t in imported_modules(path, root) if any(t == b or t.startswith(b + ".") for b in banned)}
            # ``from service.cli import main``: report service.cli, not also service.cli.main
            out += [f"{module_name(path, root)} imports {t}" for t in sorted(bad) if t.rpartition(".")[0] not in bad]
    return out


def test_packages_import_only_downwards() -> None:
    for package in FORBIDDEN:
        assert any((ROOT / package).rglob("*.py")), f"no modules found in {package}/"
    assert violations(ROOT, FORBIDDEN) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from service.cli import settings_from\n", ["training.cli_train imports service.cli"]),
        ("def late():\n    import service.cli\n", ["training.cli_train imports service.cli"]),
        ("from service import cli\n", ["training.cli_train imports service.cli"]),
        ("from service.settings import Settings\n", []),
    ],
)
def test_an_upward_import_is_caught(tmp_path: Path, source: str, expected: list[str]) -> None:
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "cli_train.py").write_text(source)
    assert violations(tmp_path, {"training": ("service.cli",)}) == expected


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    (tmp_path / "gallery" / "search").mkdir(parents=True)
    flat = tmp_path / "gallery" / "search" / "flat.py"
    flat.write_text("from ..store import CatalogStore\nfrom . import base\n")
    assert imported_modules(flat, tmp_path) == {
        "gallery.store",
        "gallery.store.CatalogStore",
        "gallery.search",
        "gallery.search.base",
    }
    assert violations(tmp_path, {"gallery": ("gallery.store",)}) == ["gallery.search.flat imports gallery.store"]
