"""py-spy around a benchmark: record a running process, then summarise where its samples went."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start_record(pid: int, seconds: float, out: Path, rate: int = 200, native: bool = False,
                 gil: bool = False) -> subprocess.Popen | None:
    """``py-spy record`` of ``pid`` for ``seconds`` into ``out`` (collapsed stacks), in the background."""
    exe = py_spy()
    if exe is None:
        return None
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
           "--format", "raw", "--output", str(out), "--nonblocking"]
    if native:
        cmd.append("--native")
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({Path(file).name})" if file else name


def summarise(path: Path, top: int = 15) -> dict:
    """Leaf ("self") and inclusive shares of the samples in a py-spy raw file, per function."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    threads: Counter = Counter()
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
    share = lambda c: [{"function": f, "share": round(n / total, 4)} for f, n in c.most_common(top)]  # noqa: E731
    return {"samples": total, "self": share(own), "inclusive": share(inclusive), "threads": share(threads)}
