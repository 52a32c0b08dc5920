"""bench.profiling: py-spy samples land in the right category, and every skulens frame it names still exists."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.profiling import CATEGORIES, categorise, summarise

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("embedder", "gallery", "service")
#: Keys of CATEGORIES that name frames outside skulens (stdlib, LiteRT, Starlette, FastAPI, uvloop).
THIRD_PARTY = {
    "Condition.wait",
    "Interpreter.invoke",
    "multipart",
    "Request.form",
    "Request.body",
    "serialize_response",
    "jsonable_encoder",
    "JSONResponse",
    "render",
    "",
}


def skulens_frames() -> set[str]:
    """``function`` and ``Class.method`` (py-spy's frame names) of everything defined in the serving packages."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    names.add(node.name)
                    names.update(
                        f"{node.name}.{item.name}"
                        for item in node.body
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    )
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
    return names


def test_every_skulens_frame_of_the_categories_is_defined() -> None:
    defined = skulens_frames()
    keys = [
        key
        for _, keys in CATEGORIES
        for key in keys
        if key not in THIRD_PARTY and not key.startswith("_worker (concurrent/futures/thread.py:")
    ]
    assert "decode_all" in keys
    assert [key for key in keys if key not in defined] == []


def test_samples_are_categorised_by_their_stack(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "\n".join(
            [
                "thread (11): MainThread;run (uvicorn/main.py:1);Runner.run (asyncio/runners.py:118) 5",
                (
                    "thread (12): AnyIO worker;_worker (concurrent/futures/thread.py:83);decode_all (service/enrolment.py:55);"
                    "decode_image (embedder/preprocess.py:150) 3"
                ),
                "thread (13): batcher;LiteRTEmbedder.embed (embedder/runtime.py:90);Interpreter.invoke (interpreter.py:9) 2",
            ]
        )
        + "\n"
    )
    shares = {row["category"]: row["share"] for row in categorise(raw)}
    assert shares == {
        "event loop: inside uvloop (I/O, HTTP parsing, or waiting in epoll)": 0.5,
        "decode: JPEG decode + letterbox": 0.3,
        "inference: Interpreter.invoke": 0.2,
    }
    summary = summarise(raw)
    assert summary["samples"] == 10
    assert summary["self"][0] == {"function": "Runner.run (runners.py)", "share": 0.5}
