"""Regenerate the result tables of bench/README.md from bench/results/*.json.

Everything between ``<!-- results:start -->`` and ``<!-- results:end -->`` in the README is
rewritten from the JSON files the benchmarks wrote (figures, command, machine, date, load),
so no figure is typed by hand.

    .venv/bin/python -m bench.report            # rewrite the README section
    .venv/bin/python -m bench.report --print    # print it instead
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DIR, HTTP_COLUMNS, RESULTS_DIR, table

START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = [
    "embedding",
    "http_e2e",
    "search",
    "gallery_search",
    "omp_check",
    "lookalike",
    "enrolment",
    "reindex",
    "reindex_ray",
    "reindex_ray_postgres",
    "serving",
]
TITLES = {
    "embedding": "1. Embedding throughput",
    "http_e2e": "2. HTTP end to end",
    "search": "3. Gallery search",
    "gallery_search": "3b. Gallery.search at 100k (as the service searches)",
    "omp_check": "3c. FAISS thread setting per thread",
    "lookalike": "3d. Keeping each SKU's lookalike current (the index follower)",
    "enrolment": "4. Enrolment",
    "reindex": "5. Re-index throughput",
    "reindex_ray": "5b. Re-index on Ray beside the local one, same 2 CPUs",
    "reindex_ray_postgres": "5c. Re-index on Ray beside the local one, PostgreSQL catalogue",
    "serving": "6. Serving process",
}


def service_commit(date_utc: str) -> str:
    """The last commit touching the service, gallery or embedder code before a run started."""
    import subprocess

    when = date_utc.replace(" UTC", " +0000")
    out = subprocess.run(
        [
            "git",
            "log",
            "-1",
            f"--before={when}",
            "--format=%h %ad %s",
            "--date=format:%H:%M",
            "--",
            "service",
            "gallery",
            "embedder/runtime.py",
            "embedder/preprocess.py",
        ],
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"`{out}`" if out else "unknown"


def provenance(d: dict[str, Any]) -> str:
    m = d["machine"]
    busy = m.get("busy_processes_at_start") or []
    lines = [
        f"- command: `{d['command']}`",
        (
            f"- machine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}; run started {m['date_utc']}, "
            f"took {d.get('seconds', '?')} s"
        ),
        f"- load average (1/5/15 min) at start {m['loadavg_at_start']}, at end {m.get('loadavg_at_end')}; "
        f"training process running at start: {m.get('training_running_at_start')}; CPU used by other "
        f"processes during the run: {m.get('other_processes_cpu_cores_during_run', '?')} cores on average"
        + (f"; other busy processes at start: {', '.join(busy)}" if busy else ""),
    ]
    lines.append(
        f"- service code measured: {service_commit(m['date_utc'])}"
        + (
            " (uncommitted changes to the service present)"
            if d.get("code", {}).get("uncommitted_changes_outside_bench")
            else ""
        )
    )
    lines += [f"- note: {n}" for n in d.get("notes", [])]
    return "\n".join(lines)


def section(name: str, d: dict[str, Any]) -> str:
    title = TITLES.get(name) or (f"2. HTTP end to end, run `{name}`" if name.startswith("http_") else name)
    out = [f"### {title} (`bench/results/{name}.json`)", "", provenance(d), ""]
    if name == "embedding":
        out += [
            "Floating-point peak measured here (NumPy/OpenBLAS float32 matmul, best of 7):",
            "",
            table(
                [
                    {
                        "threads": p["threads"],
                        "matmul": f"{p['n']}x{p['n']}",
                        "best GFLOP/s": p["best_gflops"],
                        "median GFLOP/s": p["median_gflops"],
                    }
                    for p in d["peak"]
                ]
            ),
            "",
            f"MACs per image counted from the Keras layers: {d.get('macs')}",
            "",
        ]
        if d.get("theoretical_peak_estimate"):
            t = d["theoretical_peak_estimate"]
            out += [
                f"For scale, a theoretical float32 peak estimate: {t['gflops']:.1f} GFLOP/s "
                f"({t['assumption']}; reported clock {t['cpu_mhz_reported']} MHz, {t['cores']} cores)"
                + (
                    ". The measured matmul beats it, so the cores run faster than the reported clock; the "
                    "shares of peak above use the measured figure."
                    if d["peak"][-1]["best_gflops"] > t["gflops"]
                    else "."
                ),
                "",
            ]
        cols = [
            "variant",
            "precision",
            "file MB",
            "img/s b1",
            "img/s b16",
            "img/s b32",
            "best img/s",
            "fastest round img/s",
            "GFLOP/s",
            "% of matmul peak",
            "x LiteRT fp32 same weights",
            "recall@1 val",
            "recall@1 held-out SKUs",
            "cos to fp32 LiteRT",
        ]
        if not d.get("random_weights_identical_across_variants"):
            out += [
                (
                    "In this run the random-weights MobileNetV3Large variants were each built anew without a global "
                    "seed (only the head was seeded), so their weights differ from one another: their recall@1 and "
                    "cosine columns compare nothing and are left out; their speed is what they are for. (Fixed "
                    "since: `bench.common.keras_v3large` now sets Keras' global seed.) The trained rows all share "
                    "the same weights."
                ),
                "",
            ]
            for r in d["rows"]:
                if r.get("weights") == "random":
                    r["recall@1 val"] = r["recall@1 held-out SKUs"] = r["cos to fp32 LiteRT"] = None
        for r in d["rows"]:  # runs written before the column existed: the fastest of the recorded rounds
            if "fastest round img/s" not in r and r.get("rounds"):
                r["fastest round img/s"] = max(max(v) for v in r["rounds"].values())
        out += [table(d["rows"], cols), ""]
        if d.get("recall_setup"):
            out += [f"Recall setup: {d['recall_setup']}", ""]
    elif name.startswith("http_"):  # http_e2e and its variants
        s = d.get("settings", {})
        out += [
            (
                f"Server: {s.get('server', 'skulens serve')}; model: {s.get('model')}; {s.get('load_generator')}; "
                f"{s.get('seconds')} s per level after {s.get('warmup_s')} s warm-up; server env {s.get('server_env')}."
            ),
            "",
        ]
        if d.get("enrolment"):
            e = d["enrolment"]
            out += [
                (
                    f"Pre-enrolled through the API: {e['images']} photos of {e['skus']} SKUs in {e['seconds']:.1f} s "
                    f"({e['images_per_second']:.1f} img/s, 16 per request)."
                ),
                "",
            ]
        out += [
            table(
                d.get("rows", []),
                HTTP_COLUMNS,
            ),
            "",
        ]
        if d.get("targets"):
            out += [table(d["targets"]), ""]
        for key, p in d.get("profiles", {}).items():
            out += [
                (
                    f"py-spy profile of the server, {key} ({p['samples']} samples, file `{p['file']}`), "
                    "top functions by own time:"
                ),
                "",
                table([{"function": x["function"], "share of samples": x["share"]} for x in p["self"][:10]]),
                "",
            ]
    elif name.startswith("ab_"):  # bench.http_ab: two source trees side by side
        out += ab_tables(d)
    elif name == "omp_check":
        out += [table(d["rows"]), ""]
    elif name == "lookalike":
        out += [table(d["results"]), ""]
    elif name == "gallery_search":
        out += [table(d["rows"]), "", "One flat search as a function of k:", "", table(d["flat_cost_by_k"]), ""]
    elif name.startswith("search"):
        out += [table(d["rows"]), ""]
        if d.get("targets"):
            out += [table(d["targets"]), ""]
    elif name == "enrolment":
        out += [f"Pre-enrolled: {d.get('pre_enrolled')}", "", table(d["rows"]), ""]
    elif name == "reindex":
        out += [f"Settings: {d.get('settings')}", "", table(d["rows"]), ""]
    elif name.startswith("reindex_ray"):
        out += [
            f"Settings: {d.get('settings')}; `ray.init` took {d.get('ray_init_seconds', 0):.1f} s (once, not in the rows)",
            "",
            table(d["rows"]),
            "",
        ]
    elif name == "serving":
        if d.get("startup_memory_rows"):
            out += [table(d["startup_memory_rows"]), ""]
        if d.get("gallery_search_rows"):
            out += [table(d["gallery_search_rows"]), ""]
        if d.get("enrol_at_scale_rows"):
            out += [
                table(
                    d["enrol_at_scale_rows"],
                    ["gallery", "index", "trials", "POST p50_ms", "POST p95_ms", "found by next recognise"],
                ),
                "",
            ]
        if d.get("install"):
            i = d["install"]
            out += [
                table(
                    [
                        {
                            "what": "serve-only venv (pip install /work/main, no extras)",
                            "du -sh": i["du_sh"],
                            "MiB (du -sm)": i["du_mib"],
                            "empty venv MiB": i["empty_venv_mib"],
                            "import tensorflow fails": i["import_tensorflow_fails"],
                            "import keras fails": i["import_keras_fails"],
                            "skulens serve --help works": i["skulens_serve_help_works"],
                        }
                    ]
                ),
                "",
                "Largest in site-packages (MiB): "
                + "; ".join(
                    x.replace("\t", " ").split("/site-packages/")[0].split()[0] + " " + x.split("/")[-1]
                    for x in i["largest_in_site_packages_mib"]
                ),
                "",
            ]
    return "\n".join(out)


def ab_tables(d: dict[str, Any]) -> list[str]:
    """``bench.http_ab``: the trees, medians of the timed rounds (range), each round, CPU by stage."""
    s = d.get("settings", {})
    trees = "; ".join(f"{side}: `{t['commit']}` ({t['path']})" for side, t in s.get("trees", {}).items())
    how = f"{s.get('rounds')} timed rounds of {s.get('seconds')} s per level after {s.get('warmup')} s warm-up"
    out = [
        f"Trees: {trees}. Model: {s.get('model')}"
        + (f" (after side: {s['after_model']})" if s.get("after_model", s.get("model")) != s.get("model") else "")
        + f"; {s.get('load_generator')}; {how}, the side that goes first alternating.",
        "",
    ]
    keys = ["p50_ms", "p99_ms", "req/s", "server CPU ms/request", "event-loop thread CPU ms/request"]
    keys += ["other processes cores", "top-1"]
    summary = [
        {
            "endpoint": e["endpoint"],
            "c": e["concurrency"],
            "side": e["side"],
            **{k: f"{e[k]['median']:.4g} ({e[k]['min']:.4g}-{e[k]['max']:.4g})" for k in keys if e.get(k)},
        }
        for e in d.get("summary", [])
    ]
    out += ["Median of the timed rounds (range):", "", table(summary), ""]
    rows = [r for r in d.get("rows", []) if not r.get("profiled")]
    cols = ["round", "side", "endpoint", "concurrency", "req/s", "p50_ms", "p99_ms", "server CPU ms/request"]
    cols += ["event-loop thread CPU ms/request", "other processes cores"]
    out += ["Each timed run:", "", table(rows, cols), ""]
    profiled = [r for r in d.get("rows", []) if "CPU ms/request by stage" in r]
    if profiled:
        stages = list(profiled[0]["CPU ms/request by stage"])
        by_stage = [
            {
                "stage": stage,
                **{
                    f"{r['side']} {r['endpoint']} c={r['concurrency']}": r["CPU ms/request by stage"][stage]
                    for r in profiled
                },
            }
            for stage in stages
        ]
        by_stage.append(
            {
                "stage": "total (server CPU ms/request)",
                **{f"{r['side']} {r['endpoint']} c={r['concurrency']}": r["server CPU ms/request"] for r in profiled},
            }
        )
        out += [
            "Server CPU ms per request by stage (the py-spy round; files `profile-NAME-*.txt`):",
            "",
            table(by_stage),
            "",
        ]
    return out


def http_comparison(files: dict[str, Path]) -> str:
    """/v1/recognize at each concurrency across every HTTP run (stock server, other model, variants)."""
    rows = []
    for name in sorted(n for n in files if n.startswith("http_e2e")):
        d = json.loads(files[name].read_text())
        s = d.get("settings", {})
        for r in d.get("rows", []):
            if r["endpoint"] == "/v1/recognize":
                server = s.get("server", "skulens serve") + (" " + s["serve_args"] if s.get("serve_args") else "")
                server += "".join(f" {k}={v}" for k, v in (s.get("server_env") or {}).items())
                rows.append(
                    {
                        "run": name,
                        "server": server,
                        "model": "V3L random" if "MobileNetV3Large" in str(s.get("model")) else "shipped",
                        "gallery": f"{s.get('synthetic_vectors') or 0} synthetic + "
                        f"{d.get('enrolment', {}).get('images', 0)} photos",
                        "client": "raw" if "streams" in s.get("load_generator", "") else "httpx",
                        "started": d["machine"]["date_utc"][11:19],
                        "other procs cores": d["machine"].get("other_processes_cpu_cores_during_run"),
                        "c": r["concurrency"],
                        "req/s": r["req/s"],
                        "p50_ms": r["p50_ms"],
                        "p99_ms": r["p99_ms"],
                        "mean batch": r.get("mean inference batch"),
                        "server cores": r["server CPU cores"],
                    }
                )
    if not rows:
        return ""
    return "\n".join(["### HTTP runs side by side: `/v1/recognize` (raw JPEG body)", "", table(rows), ""])


def render() -> str:
    files = {p.stem: p for p in RESULTS_DIR.glob("*.json")}
    names = [n for n in ORDER if n in files] + sorted(n for n in files if n not in ORDER)
    parts = [section(n, json.loads(files[n].read_text())) for n in names]
    comparison = http_comparison(files)
    if comparison:
        parts.insert(min(len(parts), sum(1 for n in names if n in ("embedding", "http_e2e"))), comparison)
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.print:
        print(text)
        return 0
    readme = BENCH_DIR / "README.md"
    current = readme.read_text()
    if START not in current or END not in current:
        raise SystemExit(f"{readme} lacks the {START} ... {END} markers")
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n\n{text}\n\n{END}{tail}")
    print(f"rewrote the results section of {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
