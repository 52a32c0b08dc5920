"""Shared helpers of the benchmark scripts: machine facts, results files, tables, models, photos.

Every script writes ``bench/results/<name>.json`` holding its figures together with
the machine (CPU model, cores), the date, the load average before and after the run
and the exact command, so each figure in ``bench/README.md`` can be traced to a run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python bench/NAME.py`` as well as ``python -m bench.NAME``
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"  # exported models, decoded photos (git-ignored)
GROCERY_ENV = "SKULENS_GROCERY_DIR"
DEFAULT_GROCERY = ROOT.parent / "shared" / "data" / "grocery"
V3L = "mobilenet_v3_large"


# --- machine -------------------------------------------------------------------
def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def other_busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Processes (not this one nor its children) using the CPU right now, per ``top``: the load a run shared."""
    try:
        out = subprocess.run(
            ["top", "-bn1", "-w", "200"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy, started = [], False
    for line in out.splitlines():
        if line.strip().startswith("PID"):
            started = True
            continue
        parts = line.split()
        if started and len(parts) >= 12:
            try:
                cpu = float(parts[8])
            except ValueError:
                continue
            if cpu >= min_cpu and int(parts[0]) != os.getpid():
                busy.append(f"pid {parts[0]} {parts[11]} {cpu:.0f}% CPU")
    return busy


def training_running() -> bool:
    done = subprocess.run(["pgrep", "-f", "skulens train|training"], capture_output=True, text=True, check=False)
    return bool(done.stdout.strip())


def code_version() -> dict[str, Any]:
    """The commit the code under test is at, and whether service/gallery/embedder differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes_outside_bench": bool(
            git("status", "--porcelain", "--", "service", "gallery", "embedder", "pyproject.toml")
        ),
    }


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_at_start": loadavg(),
        "busy_processes_at_start": other_busy_processes(),
        "training_running_at_start": training_running(),
    }


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Run:
    """Collects one script's results; ``save`` writes them with the machine and the command."""

    def __init__(self, name: str):
        self.name = name
        self.started = time.perf_counter()
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        how = ["-m", spec.name] if spec is not None and spec.name else [os.path.relpath(sys.argv[0], ROOT)]
        command = " ".join(shlex.quote(a) for a in [".venv/bin/python", *how, *sys.argv[1:]])
        self.data: dict[str, Any] = {
            "benchmark": name,
            "command": command,
            "machine": machine(),
            "code": code_version(),
            "notes": [],
        }
        self._busy0, self._own0 = busy_cpu_seconds(), own_cpu_seconds()
        print(
            f"# {name}: {self.data['machine']['cpu_model']}, {self.data['machine']['cores']} cores, "
            f"{self.data['machine']['date_utc']}, loadavg {self.data['machine']['loadavg_at_start']}",
            flush=True,
        )
        if self.data["machine"]["busy_processes_at_start"]:
            print(f"#   sharing the CPU with: {self.data['machine']['busy_processes_at_start']}", flush=True)

    def note(self, text: str) -> None:
        print(f"NOTE: {text}", flush=True)
        self.data["notes"].append(text)

    def save(self) -> Path:
        self.data["machine"]["loadavg_at_end"] = loadavg()
        self.data["machine"]["busy_processes_at_end"] = other_busy_processes()
        self.data["seconds"] = round(time.perf_counter() - self.started, 1)
        other = (busy_cpu_seconds() - self._busy0) - (own_cpu_seconds() - self._own0)
        # whatever else ran on the machine during this run, in cores on average (the run's own processes excluded)
        self.data["machine"]["other_processes_cpu_cores_during_run"] = round(max(0.0, other) / self.data["seconds"], 3)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        print(f"# wrote {path.relative_to(ROOT)} ({self.data['seconds']} s)", flush=True)
        return path


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts); floats shown with 4 significant digits."""
    if not rows:
        return "(no rows)"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def percentiles(samples_s: list[float]) -> dict[str, Any]:
    """p50/p95/p99/mean in milliseconds (numpy's default linear interpolation)."""
    import numpy as np

    if not samples_s:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    a = np.asarray(samples_s) * 1000.0
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def hwm_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM")


# --- photos --------------------------------------------------------------------
def grocery_dir() -> Path | None:
    path = Path(os.environ.get(GROCERY_ENV, DEFAULT_GROCERY))
    return path if (path / "train").is_dir() and (path / "val").is_dir() else None


def skip_without_grocery(run: Run) -> Path | None:
    path = grocery_dir()
    if path is None:
        run.note(
            f"SKIPPED: grocery photos not found at {os.environ.get(GROCERY_ENV, DEFAULT_GROCERY)} "
            f"(set {GROCERY_ENV} to the folder holding train/ and val/)"
        )
    return path


def photos(split_dir: Path) -> list[tuple[str, Path]]:
    """``(sku, path)`` for every photo under ``split_dir/<SKU>/``, sorted."""
    from embedder.preprocess import IMAGE_SUFFIXES

    out = []
    for sku_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        out += [(sku_dir.name, p) for p in sorted(sku_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    return out


def decoded(paths: list[Path], size: int, tag: str) -> np.ndarray:
    """Photos decoded with the serving preprocessing, cached as ``bench/.cache/pixels-<tag>-<size>.npy``."""
    import numpy as np

    from embedder.preprocess import load_image

    cache = CACHE_DIR / f"pixels-{tag}-{len(paths)}-{size}.npy"
    if cache.is_file():
        cached: np.ndarray = np.load(cache)
        return cached
    out = np.stack([load_image(p.read_bytes(), size=size) for p in paths])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


# --- models --------------------------------------------------------------------
def shipped_model_dir() -> Path | None:
    """``embedder/default_model`` when a model is shipped there."""
    from embedder.artifact import ModelNotFound, default_model_dir, load_artifact

    try:
        return load_artifact(default_model_dir()).path
    except (ModelNotFound, ValueError):
        return None


def keras_v3large(seed: int = 0, input_size: int = 224) -> keras.Model:
    """MobileNetV3Large + Dense(256) head, random weights (speed does not depend on the values).

    Keras' global seed is set first, so every call (and every precision exported from it) has the
    same weights and the variants' embeddings can be compared."""
    import keras

    from embedder.model import build_embedding_model

    keras.utils.set_random_seed(seed)
    return build_embedding_model(V3L, weights=None, input_size=input_size, seed=seed)


def v3large_export(precision: str = "float32", seed: int = 0) -> Path:
    """The random-weights MobileNetV3Large model exported at ``precision``, cached under bench/.cache/models/."""
    from embedder.artifact import ModelNotFound, load_artifact

    directory = CACHE_DIR / "models" / f"v3large-globalseed{seed}-{precision}"
    try:
        load_artifact(directory)
        return directory
    except ModelNotFound:
        pass
    from embedder.export import export_model

    started = time.perf_counter()
    export_model(
        keras_v3large(seed),
        directory,
        backbone=V3L,
        input_size=224,
        embedding_dim=256,
        weights_origin="random initialisation",
        trained=False,
        precision=precision,
    )
    print(f"# exported {directory.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return directory


def serving_model_dir(run: Run) -> tuple[Path, str]:
    """The shipped model when present, else the random-weights MobileNetV3Large fp32 export."""
    shipped = shipped_model_dir()
    if shipped is not None:
        return shipped, "shipped (embedder/default_model)"
    run.note(
        "no shipped model in embedder/default_model: serving a random-weights MobileNetV3Large fp32 export "
        "(speed only; recognition answers are meaningless)"
    )
    return v3large_export("float32"), "MobileNetV3Large random weights, fp32 LiteRT"


# the columns of an HTTP run's table (bench.http_e2e prints it, bench.report renders it from the results)
HTTP_COLUMNS = [
    "endpoint",
    "concurrency",
    "requests",
    "non-200",
    "req/s",
    "img/s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean inference batch",
    "server CPU cores",
    "client CPU cores",
    "top-1",
]
