"""One list of image file suffixes (``embedder.preprocess.IMAGE_SUFFIXES``), and it matches the accepted formats."""

from __future__ import annotations

import ast
from pathlib import Path

from PIL import Image

from embedder.preprocess import ACCEPTED_FORMATS, IMAGE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("embedder", "gallery", "service", "training", "bench", "counter")
HOME = ROOT / "embedder" / "preprocess.py"


def suffix_lists(path: Path) -> list[int]:
    """Lines of ``path`` with a tuple, list or set literal that holds an image suffix such as ``".jpg"``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Tuple | ast.List | ast.Set)
        and any(isinstance(item, ast.Constant) and item.value in IMAGE_SUFFIXES for item in node.elts)
    ]


def test_the_suffixes_are_listed_once() -> None:
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path != HOME
        for line in suffix_lists(path)
    }
    assert found == set()
    assert suffix_lists(HOME) != []  # the checker sees the one list


def test_every_suffix_is_an_accepted_format_and_every_format_has_one() -> None:
    Image.init()
    format_of = Image.registered_extensions()
    assert {format_of[suffix] for suffix in IMAGE_SUFFIXES} <= set(ACCEPTED_FORMATS)
    assert set(ACCEPTED_FORMATS) - {format_of[suffix] for suffix in IMAGE_SUFFIXES} <= {"MPO"}  # MPO files are .jpg
