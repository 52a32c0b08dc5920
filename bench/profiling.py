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


#: Stages of a request, for CPU per request by stage (``stage_of``, ``cpu_by_stage``).
STAGE_HTTP = "HTTP: uvicorn, middleware, routing, dependencies"
STAGE_MULTIPART = "request body / multipart parsing"
STAGE_DECODE = "image decode + resize"
STAGE_INFERENCE = "inference"
STAGE_SEARCH = "search"
STAGE_RESPONSE = "response / JSON"
STAGE_METRICS = "logging + metrics"
STAGE_OTHER = "other: thread hand-offs, batching, freeing"
STAGES = (
    STAGE_HTTP,
    STAGE_MULTIPART,
    STAGE_DECODE,
    STAGE_INFERENCE,
    STAGE_SEARCH,
    STAGE_RESPONSE,
    STAGE_METRICS,
    STAGE_OTHER,
)
#: (stage, substrings of one frame), tried on each frame from the innermost outwards: the innermost
#: frame that matches a rule decides (a JSON encoder called from a route is response work, the route
#: itself routing). Frames of generic helpers (``TRANSPARENT``) are skipped so that their caller decides.
STAGE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (STAGE_INFERENCE, ("Interpreter.", "LiteRTEmbedder", "ai_edge_litert", "flip_average", "with_mirrored")),
    (
        STAGE_DECODE,
        (
            "decode_image",
            "decode_all",
            "decode_upload",
            "_decode_stacked",
            "letterbox",
            "_to_rgb",
            "open_image",
            "/PIL/",
        ),
    ),
    (STAGE_SEARCH, ("gallery/", "faiss", "AppState.recognize")),
    (
        STAGE_MULTIPART,
        (
            "multipart/",
            "formparsers.py",
            "read_images",
            "read_upload",
            "Request.form",
            "Request._get_form",
            "Request.body",
            "Request.stream",
            "UploadFile",
            "tempfile.py",
        ),
    ),
    (
        STAGE_RESPONSE,
        (
            "json/",
            "pydantic",
            "encoders.py",
            "serialize_response",
            "_prepare_response_content",
            "JSONResponse",
            "Response.render",
            "Response.__init__",
            "init_headers",
            "to_out",
            "to_json",
            "recognition_response",
        ),
    ),
    (STAGE_METRICS, ("prometheus_client", "logging/", "Metrics.", "MetricsMiddleware", "send_wrapper")),
    (
        STAGE_HTTP,
        (
            "uvicorn/",
            "httptools",
            "h11",
            "starlette/",
            "fastapi/",
            "service/auth.py",
            "service/deps.py",
            "service/errors.py",
            "BodySizeLimit",
            "limited_receive",
            "tracking_send",
            "service/routes/",
            "Runner.run",
        ),
    ),
    (
        STAGE_OTHER,
        ("service/batching.py", "asyncio/", "anyio/", "concurrent/futures", "threading.py", "queue.py", "contextvars"),
    ),
)
TRANSPARENT = (
    "numpy/",
    "abc.py",
    "typing.py",
    "enum.py",
    "functools.py",
    "contextlib.py",
    "dataclasses.py",
    "<string>",
)


def is_idle(frames: list[str]) -> bool:
    """A sample of a thread blocked waiting for work (py-spy's idle filter lets some through)."""
    leaf = frames[-1]
    return leaf.startswith(("Condition.wait", "Event.wait (threading.py")) or leaf == _executor_wait_frame()


def stage_of(frames: list[str]) -> str:
    """The stage of one sample's stack (root first, as py-spy writes it; the thread's root frame included)."""
    stack = frames[1:] if frames and frames[0].startswith("thread (") else frames
    if stack and stack[-1].startswith("Runner.run"):  # the event loop inside uvloop's C code: socket I/O
        return STAGE_HTTP
    for frame in reversed(stack):
        _, _, where = frame.partition(" (")
        if any(t in where or t in frame.split(" (")[0] for t in TRANSPARENT):
            continue
        for stage, keys in STAGE_RULES:
            if any(k in frame for k in keys):
                return stage
    return STAGE_OTHER


def samples_by_thread(path: Path) -> dict[int, Counter[str]]:
    """OS thread id → active samples per stage (idle samples left out)."""
    import re

    out: dict[int, Counter[str]] = {}
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        m = re.match(r"thread \((\d+)\)", stack)
        if not m or not count.isdigit():
            continue
        frames = stack.split(";")
        tid = int(m.group(1))
        out.setdefault(tid, Counter())
        if not is_idle(frames):
            out[tid][stage_of(frames)] += int(count)
    return out


def cpu_by_stage(
    path: Path,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    requests: int,
    no_frames_stage: str = STAGE_INFERENCE,
) -> dict[str, float]:
    """Server CPU milliseconds per request by stage.

    Each thread's CPU time (from /proc: ``bench.serverkit.thread_cpu`` before and after) is shared
    among the stages of that thread's active py-spy samples. A sample says where a thread was, not
    that it was on a core (a runnable thread waiting for one counts too), so the CPU itself comes
    from /proc and only its split within a thread from the samples. Threads that never show a Python
    frame are XNNPACK's pthreadpool workers (``no_frames_stage``: inference; FAISS runs on one thread
    per search, in the search thread); a thread whose samples were all idle goes to "other".
    """
    samples = samples_by_thread(path)
    ms: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    for tid, (_, cpu) in after.items():
        used = cpu - before.get(tid, ("", 0.0))[1]
        if used <= 0:
            continue
        counts = samples.get(tid)
        if counts is None:
            ms[no_frames_stage] += used
            continue
        total = sum(counts.values())
        if total == 0:
            ms[STAGE_OTHER] += used
            continue
        for stage, n in counts.items():
            ms[stage] += used * n / total
    return {stage: round(1000.0 * v / max(1, requests), 3) for stage, v in ms.items()}
