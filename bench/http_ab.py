"""Two versions of the service side by side in one run: ``/v1/recognize`` before and after a change.

Each side is the real ``skulens serve`` started from its own source tree (``--before DIR``,
``--after DIR``: e.g. ``git worktree add`` of two commits; one venv), over copies of one data
directory (the grocery train photos, enrolled once through the API). Both servers stay up for the
whole run and the closed-loop load (bench/loadgen.py) alternates between them: each round runs
every endpoint and level on one side, then on the other, and the side that goes first alternates,
so that the load of a shared machine falls on both alike. For every level the server's CPU per
request (from /proc, in total and on its event-loop thread) and the CPU that other processes used
meanwhile are recorded. A last round (``--profile``) records each side with py-spy and splits its
CPU per request by stage (``bench.profiling.cpu_by_stage``); py-spy takes CPU of its own, so that
round's latencies are not among the timed ones.

    .venv/bin/python -m bench.http_ab --before ../skulens-before --after ../skulens-after \\
        [--rounds 4] [--levels 1,8] [--seconds 12] [--endpoints recognize,recognize-multipart] [--profile]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench import serverkit
from bench.common import (
    RESULTS_DIR,
    Run,
    busy_cpu_seconds,
    percentiles,
    photos,
    serving_model_dir,
    skip_without_grocery,
)
from bench.loadgen import run_level
from bench.profiling import STAGES, cpu_by_stage, start_record
from tests.e2e.server import Server

SIDES = ("before", "after")


class TreeServer(Server):
    """``skulens serve`` run from the source tree ``root`` (``python -m service.cli`` there: that tree's
    packages come first on ``sys.path``, ahead of the venv's editable install)."""

    def __init__(self, root: Path, data_dir: Path, model_dir: Path, extra_args: list[str] | None = None):
        super().__init__(data_dir, model_dir, extra_args or [])
        self.root = self.cwd = root
        self.ready_path = "/readyz"

    def start(self, timeout: float = 120.0) -> TreeServer:
        super().start(timeout)
        return self


def tree_commit(root: Path) -> str:
    git = ["git", "-C", str(root)]
    done = subprocess.run([*git, "log", "-1", "--format=%h %s"], check=False, capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "service", "embedder", "gallery"],
        check=False,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()[:120] + (" (uncommitted changes)" if dirty.stdout else "")


def measure(
    server: Server,
    idle: Server,
    concurrency: int,
    make: Callable[[int], dict[str, Any]],
    judge: Callable[[int, bytes], bool],
    seconds: float,
    warmup: float,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """One level on ``server`` (``idle``: the other side, whose CPU is not 'other processes')."""
    assert server.process is not None and idle.process is not None
    pid, idle_pid = server.process.pid, idle.process.pid
    marks: dict[str, Any] = {}

    def snapshot(key: str) -> None:
        me = resource.getrusage(resource.RUSAGE_SELF)
        marks[key] = {
            "busy": busy_cpu_seconds(),
            "server": serverkit.cpu_seconds(pid),
            "idle": serverkit.cpu_seconds(idle_pid),
            "client": me.ru_utime + me.ru_stime,
            "threads": serverkit.thread_cpu(pid),
        }

    recorder = None
    if profile_to is not None:
        recorder = start_record(pid, seconds + warmup, profile_to)
    result = run_level(
        server.url, concurrency, make, judge, seconds, 100_000, warmup, lambda: snapshot("0"), lambda: snapshot("1")
    )
    a, b = marks["0"], marks["1"]
    n = len(result.latencies_s)
    server_cpu = b["server"] - a["server"]
    main_cpu = b["threads"].get(pid, ("", 0.0))[1] - a["threads"].get(pid, ("", 0.0))[1]
    others = (b["busy"] - a["busy"]) - server_cpu - (b["idle"] - a["idle"]) - (b["client"] - a["client"])
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": n,
        "non-200": sum(k for s, k in result.statuses.items() if s != 200),
        "req/s": n / result.seconds,
        **percentiles(result.latencies_s),
        "top-1": result.correct / result.judged if result.judged else None,
        "server CPU ms/request": 1000.0 * server_cpu / max(1, n),
        "event-loop thread CPU ms/request": 1000.0 * main_cpu / max(1, n),
        "server cores": server_cpu / result.seconds,
        "client cores": (b["client"] - a["client"]) / result.seconds,
        "other processes cores": max(0.0, others) / result.seconds,
        "errors": dict(result.errors),
    }
    if recorder is not None and profile_to is not None:
        recorder.wait(timeout=seconds + warmup + 60)
        if profile_to.exists():
            row["CPU ms/request by stage"] = cpu_by_stage(profile_to, a["threads"], b["threads"], n)
            row["profile"] = profile_to.name
    return row


def median_of(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="source tree of the 'before' side")
    parser.add_argument("--after", type=Path, required=True, help="source tree of the 'after' side")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--levels", default="1,8")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--endpoints", default="recognize,recognize-multipart")
    parser.add_argument("--profile", action="store_true", help="a last round under py-spy: CPU by stage")
    parser.add_argument("--enrol-limit", type=int, default=None)
    parser.add_argument("--name", default="http_ab")
    parser.add_argument(
        "--after-model",
        type=Path,
        default=None,
        help="a model folder for the 'after' side only (e.g. another precision): its gallery is enrolled "
        "with it; default: both sides serve the same model",
    )
    args = parser.parse_args(argv)

    run = Run(args.name)
    grocery = skip_without_grocery(run)
    if grocery is None:
        run.save()
        return 0
    model_dir, model_label = serving_model_dir(run)
    levels = [int(x) for x in args.levels.split(",")]
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    run.data["settings"] = {
        **{k: v for k, v in vars(args).items() if k not in ("before", "after")},
        "model": model_label,
        "after_model": str(args.after_model) if args.after_model else model_label,
        "trees": {side: {"path": str(root), "commit": tree_commit(root)} for side, root in roots.items()},
        "load_generator": "asyncio + httpx.AsyncClient, closed loop, keep-alive, same machine",
    }
    print(f"  trees: {run.data['settings']['trees']}", flush=True)
    bodies = [(sku, path.read_bytes()) for sku, path in photos(grocery / "val")]

    def judge(n: int, body: bytes) -> bool:
        matches = json.loads(body)["matches"]
        return bool(matches) and matches[0]["sku"] == bodies[n % len(bodies)][0]

    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "recognize": lambda n: {
            "url": "/v1/recognize",
            "content": bodies[n % len(bodies)][1],
            "headers": {"Content-Type": "image/jpeg"},
        },
        "recognize-multipart": lambda n: {
            "url": "/v1/recognize",
            "files": [("image", ("crop.jpg", bodies[n % len(bodies)][1], "image/jpeg"))],
        },
    }

    work = Path(tempfile.mkdtemp(prefix="skulens-bench-ab-"))
    servers: dict[str, Server] = {}
    rows: list[dict[str, Any]] = []
    try:
        models = {"before": model_dir, "after": args.after_model.resolve() if args.after_model else model_dir}
        for side in SIDES if args.after_model else ("before",):  # another model: its own vectors
            first = TreeServer(roots[side], work / side / "data", models[side]).start()
            try:
                with first.client() as http:
                    enrolled = serverkit.enrol_folder(http, grocery / "train", limit=args.enrol_limit)
                    run.data["enrolment" if side == "before" else "enrolment_after"] = enrolled
            finally:
                first.stop()
        if not args.after_model:
            shutil.copytree(work / "before" / "data", work / "after" / "data")
        for side in SIDES:
            servers[side] = TreeServer(roots[side], work / side / "data", models[side]).start()
        total_rounds = args.rounds + (1 if args.profile else 0)
        for r in range(total_rounds):
            profiled = args.profile and r == args.rounds
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            for side in order:
                other = servers["after" if side == "before" else "before"]
                for endpoint in endpoints:
                    for c in levels:
                        profile_to = (
                            RESULTS_DIR / f"profile-{args.name}-{side}-{endpoint}-c{c}.txt" if profiled else None
                        )
                        row = measure(
                            servers[side], other, c, makers[endpoint], judge, args.seconds, args.warmup, profile_to
                        )
                        row = {"round": r + 1, "profiled": profiled, "side": side, "endpoint": endpoint, **row}
                        rows.append(row)
                        print(
                            f"  r{r + 1}{' (py-spy)' if profiled else ''} {side:6} {endpoint} c={c}: "
                            f"{row['req/s']:.1f} req/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.1f} ms, "
                            f"server {row['server CPU ms/request']:.2f} ms/req "
                            f"(loop {row['event-loop thread CPU ms/request']:.2f}), "
                            f"others {row['other processes cores']:.2f} cores",
                            flush=True,
                        )
                        if "CPU ms/request by stage" in row:
                            print(f"    by stage: {row['CPU ms/request by stage']}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    summary = []
    for endpoint in endpoints:
        for c in levels:
            for side in SIDES:
                timed = [
                    r
                    for r in rows
                    if not r["profiled"] and r["side"] == side and r["endpoint"] == endpoint and r["concurrency"] == c
                ]
                entry: dict[str, Any] = {"endpoint": endpoint, "concurrency": c, "side": side, "rounds": len(timed)}
                for key in (
                    "p50_ms",
                    "p99_ms",
                    "req/s",
                    "server CPU ms/request",
                    "event-loop thread CPU ms/request",
                    "other processes cores",
                    "top-1",
                ):
                    entry[key] = median_of(timed, key)
                summary.append(entry)
    run.data["rows"] = rows
    run.data["summary"] = summary
    print()
    for entry in summary:
        print(
            f"{entry['endpoint']} c={entry['concurrency']} {entry['side']}: "
            + ", ".join(
                f"{k} {v['median']:.3g} ({v['min']:.3g}-{v['max']:.3g})"
                for k, v in entry.items()
                if isinstance(v, dict) and v
            )
        )
    profiled_rows = [r for r in rows if "CPU ms/request by stage" in r]
    if profiled_rows:
        print()
        header = "| stage | " + " | ".join(f"{r['side']} {r['endpoint']} c={r['concurrency']}" for r in profiled_rows)
        print(header + " |")
        print("|---" * (len(profiled_rows) + 1) + "|")
        for stage in STAGES:
            print(
                f"| {stage} | " + " | ".join(f"{r['CPU ms/request by stage'][stage]:.2f}" for r in profiled_rows) + " |"
            )
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
