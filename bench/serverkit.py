"""The real ``skulens serve`` for benchmarks: start it, enrol photos, read its CPU time and metrics."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import photos
from tests.e2e.server import Server

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start(
    data_dir: Path,
    model_dir: Path,
    extra_args: list[str] | None = None,
    env: dict[str, Any] | None = None,
    timeout: float = 600.0,
) -> tuple[Server, float]:
    """Start ``skulens serve`` and wait for ``/readyz`` 200; returns the server and seconds from spawn to ready."""
    server = Server(Path(data_dir), Path(model_dir), extra_args or [], env=env or {})
    started = time.perf_counter()
    server.start(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(server.url + "/readyz", timeout=5.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("server never became ready")
        time.sleep(0.05)
    return server, time.perf_counter() - started


def enrol_folder(http: httpx.Client, folder: Path, per_request: int = 16, limit: int | None = None) -> dict[str, Any]:
    """POST every photo under ``folder/<SKU>/`` to ``/v1/skus/<SKU>/images``, ``per_request`` at a time."""
    items = photos(folder)[:limit] if limit else photos(folder)
    by_sku: dict[str, list[Path]] = {}
    for sku, path in items:
        by_sku.setdefault(sku, []).append(path)
    started, done = time.perf_counter(), 0
    for sku, paths in by_sku.items():
        for i in range(0, len(paths), per_request):
            chunk = paths[i : i + per_request]
            files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in chunk]
            r = http.post(f"/v1/skus/{sku}/images", files=files, timeout=300.0)
            if r.status_code != 201:
                raise RuntimeError(f"enrol {sku}: {r.status_code} {r.text[:300]}")
            done += len(chunk)
    seconds = time.perf_counter() - started
    return {"images": done, "skus": len(by_sku), "seconds": seconds, "images_per_second": done / seconds}


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process (all its threads) and of its live descendants (``--workers N``
    runs the app in N child processes) from /proc; a process that ends meanwhile counts as 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    """The process's live child processes (every thread's ``children`` list in /proc)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return found


def scrape(http: httpx.Client) -> dict[str, float]:
    """The gauges of /metrics (inference batches and images, gallery size)."""
    text = http.get("/metrics").text
    out = {}
    for name in (
        "skulens_inference_batches_total",
        "skulens_inference_images_total",
        "skulens_index_vectors",
        "skulens_gallery_reference_images",
    ):
        m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        if m:
            out[name] = float(m.group(1))
    return out


def enrol_then_recognise(http: httpx.Client, trials: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """For each ``(new SKU id, photo)``: POST it as that SKU's only reference image, then at once
    recognise the same photo; returns per-trial POST and recognise latencies and the answer."""
    out = []
    for sku, data in trials:
        started = time.perf_counter()
        posted = http.post(f"/v1/skus/{sku}/images", files=[("images", ("new.jpg", data, "image/jpeg"))])
        post_s = time.perf_counter() - started
        started = time.perf_counter()
        answer = http.post("/v1/recognize", content=data, headers={"Content-Type": "image/jpeg"})
        recognise_s = time.perf_counter() - started
        body = answer.json() if answer.status_code == 200 else {}
        top = body.get("matches", [{}])[0] if body.get("matches") else {}
        out.append(
            {
                "sku": sku,
                "post_status": posted.status_code,
                "post_s": post_s,
                "recognise_status": answer.status_code,
                "recognise_s": recognise_s,
                "top_match": top.get("sku"),
                "top_score": top.get("score"),
                "decision": body.get("decision"),
                "found": top.get("sku") == sku,
            }
        )
    return out


class VariantServer(Server):
    """``bench.variant_server`` (the unchanged app with one knob turned) instead of ``skulens serve``."""

    def __init__(self, data_dir: Path, model_dir: Path, variant_args: list[str], env: dict[str, Any] | None = None):
        super().__init__(data_dir, model_dir, [], env=env or {})
        self.variant_args = variant_args

    def start(self, timeout: float = 60.0) -> VariantServer:
        import subprocess
        import sys

        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **self.env}
        command = [
            sys.executable,
            "-m",
            "bench.variant_server",
            "--data-dir",
            str(self.data_dir),
            "--model",
            str(self.model_dir),
            "--port",
            str(self.port),
            *self.variant_args,
        ]
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - the server's log, open while it runs
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"variant server exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"variant server did not start in {timeout} s")


def start_variant(
    data_dir: Path, model_dir: Path, variant_args: list[str], env: dict[str, Any] | None = None, timeout: float = 600.0
) -> tuple[Server, float]:
    server = VariantServer(Path(data_dir), Path(model_dir), variant_args, env)
    started = time.perf_counter()
    server.start(timeout=timeout)
    while httpx.get(server.url + "/readyz", timeout=5.0).status_code != 200:
        time.sleep(0.05)
    return server, time.perf_counter() - started


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid → (thread name, user + system CPU seconds) for every thread of ``pid``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return out


def thread_cpu_delta(
    pid: int,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    seconds: float,
    names: dict[int, str] | None = None,
) -> dict[str, float]:
    """CPU cores used per group of threads between two ``thread_cpu`` readings.

    Python does not name OS threads, so every thread reads ``python`` in /proc; ``names`` (tid → Python
    thread name, e.g. from a py-spy profile) tells them apart. Threads with no Python frames at all
    (XNNPACK's pthreadpool workers, OpenMP workers) are not in ``names``.
    """
    groups: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        used = cpu - before.get(tid, (comm, 0.0))[1]
        if tid == pid:
            group = "main thread (event loop, HTTP, routing)"
        elif names is None:
            group = "other threads (inference, decode, search, XNNPACK/OpenMP workers)"
        elif tid in names:
            group = names[tid].rstrip("0123456789_- ") or names[tid]
        else:
            group = "threads without Python frames (XNNPACK pthreadpool / OpenMP workers)"
        groups[group] = groups.get(group, 0.0) + used / seconds
    return {k: round(v, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}
