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


def test_cpu_by_stage_splits_each_threads_cpu_by_its_active_samples(tmp_path: Path) -> None:
    from bench.profiling import (
        STAGE_DECODE,
        STAGE_HTTP,
        STAGE_INFERENCE,
        STAGE_METRICS,
        STAGE_MULTIPART,
        STAGE_OTHER,
        STAGE_RESPONSE,
        STAGE_SEARCH,
        cpu_by_stage,
        stage_of,
    )

    main = "thread (11): MainThread;run (uvicorn/main.py:1);Runner.run (asyncio/runners.py:118)"
    route = f"{main};HttpToolsProtocol.data_received (uvicorn/protocols/http/httptools_impl.py:1)"
    assert stage_of(main.split(";")) == STAGE_HTTP
    assert stage_of(f"{route};read_images (service/uploads.py:1);parse (multipart/multipart.py:9)".split(";")) == (
        STAGE_MULTIPART
    )
    assert stage_of(f"{route};json_response (service/routes/recognize.py:1);dumps (json/__init__.py:1)".split(";")) == (
        STAGE_RESPONSE
    )
    assert stage_of(
        f"{route};MetricsMiddleware.__call__ (service/metrics.py:1);inc (prometheus_client/m.py:1)".split(";")
    ) == (STAGE_METRICS)
    assert stage_of(f"{route};MicroBatcher.submit (service/batching.py:1)".split(";")) == STAGE_OTHER
    decode = "thread (12): decode_0;_worker (concurrent/futures/thread.py:83);_decode_stacked (service/uploads.py:1)"
    assert stage_of(f"{decode};decode_image (embedder/preprocess.py:1);Image.resize (PIL/Image.py:1)".split(";")) == (
        STAGE_DECODE
    )
    assert stage_of(f"{decode};stack (numpy/core/shape_base.py:1)".split(";")) == STAGE_DECODE  # its copy
    search = "thread (14): search_0;Gallery.search (gallery/gallery.py:1);__init__ (<string>:2)"
    assert stage_of(search.split(";")) == STAGE_SEARCH

    worker = "thread (13): inference_0;_worker (concurrent/futures/thread.py:83)"
    lines = [
        f"{main} 6",
        f"{route};json_response (service/routes/recognize.py:1);dumps (json/__init__.py:1) 2",
        f"{worker};LiteRTEmbedder.embed (embedder/runtime.py:90);Interpreter.invoke (interpreter.py:9) 3",
        f"{worker};Condition.wait (threading.py:320) 50",  # idle: left out
    ]
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join(lines) + "\n")
    before = {11: ("python", 1.0), 13: ("python", 2.0), 15: ("python", 0.0)}
    after = {11: ("python", 1.8), 13: ("python", 4.0), 15: ("python", 0.5)}  # 15: no Python frames (XNNPACK)
    ms = cpu_by_stage(raw, before, after, requests=100)
    assert ms[STAGE_HTTP] == 6.0 and ms[STAGE_RESPONSE] == 2.0  # the main thread's 0.8 s, 6:2
    assert ms[STAGE_INFERENCE] == 25.0  # the inference thread's 2 s and the worker's 0.5 s
    assert sum(ms.values()) == 33.0
