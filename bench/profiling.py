"""py-spy around a benchmark: record a running process, then summarise where its samples went."""

from __future__ import annotations

import concurrent.futures.thread
import inspect
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start_record(
    pid: int, seconds: float, out: Path, rate: int = 100, native: bool = False, gil: bool = False
) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of ``pid`` for ``seconds`` into ``out`` (collapsed stacks), in the background."""
    exe = py_spy()
    if exe is None:
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--threads",
    ]
    Path(out).unlink(missing_ok=True)
    if native:
        cmd.append("--native")  # C/C++ frames too; py-spy then pauses the process for each sample
    else:
        cmd.append("--nonblocking")
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({Path(file).name})" if file else name


def _executor_wait_frame() -> str:
    """The py-spy frame of an idle thread-pool worker (blocked on its queue) in this Python's stdlib."""
    lines, first = inspect.getsourcelines(concurrent.futures.thread._worker)
    line = next(first + i for i, text in enumerate(lines) if "work_queue.get(block=True)" in text)
    return f"_worker (concurrent/futures/thread.py:{line})"


#: (category, substrings of a stack that put a sample in it), first match wins. The skulens frames are
#: checked against the code by tests/test_bench_profiling.py, so a renamed function cannot drop out unseen.
CATEGORIES = (
    ("idle: waiting (queue, condition, executor)", ("Condition.wait", _executor_wait_frame())),
    ("inference: interpreter creation (new batch size)", ("LiteRTEmbedder._interpreter",)),
    ("inference: Interpreter.invoke", ("Interpreter.invoke",)),
    ("inference: other", ("LiteRTEmbedder.embed", "MicroBatcher")),
    ("decode: JPEG decode + letterbox", ("decode_image", "decode_all", "decode_upload")),
    ("gallery search (FAISS + aggregation + SQLite)", ("Gallery.recognize", "Gallery.search", "check_model")),
    ("reading the request body / multipart", ("multipart", "read_images", "Request.form", "Request.body")),
    ("response serialisation (pydantic/JSON)", ("serialize_response", "jsonable_encoder", "JSONResponse", "render")),
    ("event loop, HTTP, FastAPI routing, other Python", ("",)),
)


def thread_names(path: Path) -> dict[int, str]:
    """OS thread id → Python thread name, from the ``thread (TID): NAME`` roots py-spy ``--threads`` writes."""
    import re

    names = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"thread \((\d+)\): ([^;]+);", line)
        if m:
            names[int(m.group(1))] = m.group(2)
    return names


def categorise(path: Path) -> list[dict[str, Any]]:
    """Share of the samples per category of work (see ``CATEGORIES``); a stack whose last frame is the
    event loop's ``Runner.run`` is the main thread inside uvloop's C code (I/O, HTTP parsing, or epoll)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        if stack.split(";")[-1].startswith("Runner.run"):
            counts["event loop: inside uvloop (I/O, HTTP parsing, or waiting in epoll)"] += int(count)
            continue
        for name, keys in CATEGORIES:
            if any(k in stack for k in keys):
                counts[name] += int(count)
                break
    return [{"category": name, "share": round(n / total, 4) if total else 0.0} for name, n in counts.most_common()]


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Leaf ("self") and inclusive shares of the samples in a py-spy raw file, per function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        own[_short(frames[-1])] += n
        for f in {_short(f) for f in frames[1:]}:
            inclusive[f] += n

    def share(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "share": round(n / total, 4)} for f, n in c.most_common(top)]

    return {
        "samples": total,
        "self": share(own),
        "inclusive": share(inclusive),
        "threads": share(threads),
        "categories": categorise(path),
    }
