"""Results as text: Markdown tables (terminal and docs) and a self-contained HTML report.

The HTML needs nothing but a browser: thumbnails are base64 JPEG data URIs and
histograms are inline SVG (no matplotlib). Numbers are *truncated*, never
rounded up, to 4 decimals (``fmt``); counts are shown next to rates where they help.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from evaluation.evaluate import REJECTION_POINTS
from evaluation.results import EvalResult, GroupScore, OpenSet, QueryOutcome

if TYPE_CHECKING:
    from evaluation.metrics import OpenSetResult

Table = tuple[list[str], list[list[str]]]  # header, rows


def fmt(value: float | None, digits: int = 4) -> str:
    """Truncate toward zero (0.84999 → 0.8499): a table never claims more than was measured."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    scale = 10**digits
    return f"{math.trunc(value * scale) / scale:.{digits}f}"


def _group(groups: Sequence[GroupScore], name: str) -> GroupScore | None:
    return next((g for g in groups if g.name == name), None)


def _with_n(value: float, n: int) -> str:
    return f"{fmt(value)} ({round(value * n)}/{n})" if n and math.isfinite(value) else fmt(value)


def closed_table(results: Sequence[EvalResult]) -> Table:
    header = ["metric", *[r.label for r in results]]
    first = results[0].closed
    rows = [
        ["gallery photos / SKUs", *[f"{r.closed.gallery_images} / {r.closed.gallery_skus}" for r in results]],
        ["queries", *[str(r.closed.queries) for r in results]],
        ["top-1", *[_with_n(r.closed.top1, r.closed.queries) for r in results]],
        ["top-5", *[_with_n(r.closed.top5, r.closed.queries) for r in results]],
    ]
    rows.extend([f"Recall@{k}", *[fmt(r.closed.recall_at_k.get(k)) for r in results]] for k in first.recall_at_k)
    rows.append(["mAP@R", *[fmt(r.closed.map_at_r) for r in results]])
    for group in first.groups:
        for metric in ("top1", "top5"):
            cells = []
            for r in results:
                g = _group(r.closed.groups, group.name)
                cells.append(_with_n(getattr(g, metric), g.queries) if g else "n/a")
            rows.append([f"{metric[:3]}-{metric[3:]} on {group.name} SKUs", *cells])
    return header, rows


def open_table(results: Sequence[EvalResult]) -> Table | None:
    if all(r.open is None for r in results):
        return None
    header = ["metric", *[r.label for r in results]]

    def cells(get: Callable[[OpenSet], str]) -> list[str]:
        return [get(r.open) if r.open is not None else "n/a" for r in results]

    rows = [
        ["enrolled SKUs / unknown SKUs", *cells(lambda o: f"{o.gallery_skus} / {len(o.unknown_skus)}")],
        ["known / unknown queries", *cells(lambda o: f"{o.at_threshold.known} / {o.at_threshold.unknown}")],
        ["AUROC known vs unknown", *cells(lambda o: fmt(o.auroc))],
        ["threshold", *cells(lambda o: f"{o.at_threshold.threshold:.4f}")],
        [
            "target precision reached",
            *cells(
                lambda o: "given threshold" if o.calibration is None else ("yes" if o.calibration.reached else "no")
            ),
        ],
        ["known accuracy at threshold", *cells(lambda o: fmt(o.at_threshold.known_accuracy))],
        ["known acceptance at threshold", *cells(lambda o: fmt(o.at_threshold.known_acceptance))],
        ["unknown rejection at threshold", *cells(lambda o: fmt(o.at_threshold.unknown_rejection))],
        ["precision of accepted answers", *cells(lambda o: fmt(o.at_threshold.precision))],
    ]
    for i, fraction in enumerate(REJECTION_POINTS):

        def at(o: OpenSet, i: int = i) -> str:
            p = o.operating_points[i]
            return f"{fmt(p.known_accuracy)} (rejects {fmt(p.unknown_rejection)}, t={p.threshold:.4f})"

        rows.append([f"known accuracy, lowest threshold rejecting >= {fraction:.0%} of unknowns", *cells(at)])
    if any(r.open is not None and r.open.cross_fitted is not None for r in results):

        def cf(get: Callable[[OpenSetResult], str]) -> list[str]:
            return cells(lambda o: get(o.cross_fitted.result) if o.cross_fitted else "n/a")

        rows += [
            ["2-fold cross-fitted: known accuracy", *cf(lambda x: fmt(x.known_accuracy))],
            ["2-fold cross-fitted: unknown rejection", *cf(lambda x: fmt(x.unknown_rejection))],
            ["2-fold cross-fitted: precision", *cf(lambda x: fmt(x.precision))],
        ]
    return header, rows


def robustness_table(results: Sequence[EvalResult]) -> Table | None:
    if not results[0].robustness:
        return None
    header = ["condition", *[f"{r.label} top-1" for r in results]]
    groups = [g.name for g in results[0].robustness[0].groups]
    header += [f"{r.label} top-1 {g}" for g in groups for r in results]
    rows = []
    for i, row in enumerate(results[0].robustness):
        line = [row.condition, *[fmt(r.robustness[i].top1) for r in results]]
        for g in groups:
            line += [fmt(getattr(_group(r.robustness[i].groups, g), "top1", float("nan"))) for r in results]
        rows.append(line)
    return header, rows


def per_sku_table(results: Sequence[EvalResult]) -> Table:
    skus = [s.sku for s in results[0].closed.per_sku]
    by_model = [{s.sku: s for s in r.closed.per_sku} for r in results]
    rows = [[sku, *[f"{m[sku].correct}/{m[sku].queries}" if sku in m else "n/a" for m in by_model]] for sku in skus]
    return ["SKU", *[r.label for r in results]], rows


def confused_table(result: EvalResult) -> Table:
    rows = [[c.true_sku, c.predicted_sku, str(c.count), fmt(c.fraction)] for c in result.closed.confused]
    return ["true SKU", "answered as", "queries", "fraction of its queries"], rows


def markdown(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_tables(results: Sequence[EvalResult], settings: dict[str, Any] | None = None) -> str:
    """Every table of a run, side by side for several models, in Markdown."""
    parts = [
        "### Models",
        markdown(
            (
                ["label", "version", "backbone", "trained", "weights"],
                [
                    [
                        r.label,
                        str(r.model.get("version")),
                        str(r.model.get("backbone")),
                        str(r.model.get("trained")),
                        str(r.model.get("weights_origin")),
                    ]
                    for r in results
                ],
            )
        ),
    ]
    parts += ["### Closed set (every gallery SKU enrolled)", markdown(closed_table(results))]
    if (table := open_table(results)) is not None:
        parts += ["### Open set (unknown SKUs removed from the gallery)", markdown(table)]
    if (table := robustness_table(results)) is not None:
        parts += ["### Robustness (closed set, degraded queries)", markdown(table)]
    parts += ["### Per-SKU top-1 (correct/queries)", markdown(per_sku_table(results))]
    for r in results:
        parts += [f"### Most confused pairs: {r.label}", markdown(confused_table(r))]
    return "\n\n".join(parts) + "\n"


# --- HTML -------------------------------------------------------------------------------------------


def thumbnail(path: str | Path, size: int = 112) -> str:
    """A JPEG data URI of the photo, at most ``size`` px on its longer side."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def histogram_svg(
    series: dict[str, Sequence[float]],
    colors: Sequence[str] = ("#2a7", "#d43", "#36c"),
    bins: int = 30,
    width: int = 640,
    height: int = 220,
    threshold: float | None = None,
) -> str:
    """Overlaid histograms (fraction of each series per bin) as an inline SVG."""
    values = [v for s in series.values() for v in s]
    if not values:
        return "<p>(no scores)</p>"
    low, high = min(values), max(values)
    if threshold is not None:
        low, high = min(low, threshold), max(high, threshold)
    span = (high - low) or 1.0
    pad, plot_h = 30, height - 50
    step = (width - 2 * pad) / bins
    counts: dict[str, list[float]] = {}
    for name, data in series.items():
        tally = [0] * bins
        for v in data:
            tally[min(bins - 1, int((v - low) / span * bins))] += 1
        counts[name] = [x / max(1, len(data)) for x in tally]
    top = max(max(c) for c in counts.values()) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<line x1="{pad}" y1="{pad + plot_h}" x2="{width - pad}" y2="{pad + plot_h}" stroke="#444"/>',
    ]
    for c, color in zip(counts.values(), colors):
        for i, x in enumerate(c):
            h = x / top * plot_h
            parts.append(
                f'<rect x="{pad + i * step:.1f}" y="{pad + plot_h - h:.1f}" width="{step:.1f}" '
                f'height="{h:.1f}" fill="{color}" fill-opacity="0.45"/>'
            )
    for i, (name, color) in enumerate(zip(series, colors)):
        parts.append(
            f'<rect x="{pad + 10}" y="{8 + i * 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{pad + 24}" y="{17 + i * 14}" font-size="11">{html.escape(name)} '
            f"(n={len(series[name])})</text>"
        )
    for x in (low, (low + high) / 2, high):
        px = pad + (x - low) / span * (width - 2 * pad)
        parts.append(f'<text x="{px:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">{x:.3f}</text>')
    if threshold is not None:
        px = pad + (threshold - low) / span * (width - 2 * pad)
        anchor, tx = ("end", px - 3) if px > width * 0.7 else ("start", px + 3)
        parts.append(
            f'<line x1="{px:.1f}" y1="{pad}" x2="{px:.1f}" y2="{pad + plot_h}" stroke="#000" '
            f'stroke-dasharray="4 3"/><text x="{tx:.1f}" y="{pad + 10}" font-size="11" '
            f'text-anchor="{anchor}">threshold {threshold:.3f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}.ex{display:flex;gap:6px;margin:6px 0;align-items:flex-start}
.ex figure{margin:0;width:104px;font-size:11px;text-align:center}.ex img{border:3px solid #ddd}
.ex .q img{border-color:#36c}.ex .hit img{border-color:#2a7}.ex .miss img{border-color:#d43}
.bar{background:#2a7;height:10px;display:inline-block}.small{color:#666;font-size:12px}"""


def _example(outcome: QueryOutcome, size: int) -> str:
    cells = [
        (
            f'<figure class="q"><img src="{thumbnail(outcome.path, size)}" alt="query"><figcaption>query: '
            f"<b>{html.escape(outcome.sku)}</b></figcaption></figure>"
        )
    ]
    for rank, (sku, score, path) in enumerate(zip(outcome.top_skus, outcome.top_scores, outcome.top_paths), 1):
        kind = "hit" if sku == outcome.sku else "miss"
        cells.append(
            f'<figure class="{kind}"><img src="{thumbnail(path, size)}" alt="{html.escape(sku)}">'
            f"<figcaption>{rank}. {html.escape(sku)}<br>{score:.3f}</figcaption></figure>"
        )
    return '<div class="ex">' + "".join(cells) + "</div>"


def _per_sku_bars(result: EvalResult) -> str:
    rows = sorted(result.closed.per_sku, key=lambda s: (s.accuracy, s.sku))
    body = "".join(
        f"<tr><td>{html.escape(s.sku)}</td><td>{s.correct}/{s.queries}</td><td>"
        f'<span class="bar" style="width:{200 * s.accuracy:.0f}px"></span> {fmt(s.accuracy)}</td></tr>'
        for s in rows
    )
    return f"<table><thead><tr><th>SKU</th><th>correct</th><th>top-1</th></tr></thead><tbody>{body}</tbody></table>"


def write_report(
    result: EvalResult,
    path: str | Path,
    settings: dict[str, Any] | None = None,
    right: int = 6,
    wrong: int = 10,
    unknown: int = 6,
    thumb: int = 96,
) -> Path:
    """One model's HTML report: tables, histograms, per-SKU accuracy, retrieval examples (right and wrong)."""
    path = Path(path)
    title = f"skulens evaluation: {result.label}"
    out = [
        (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        )
    ]
    model = ", ".join(f"{k}: {v}" for k, v in result.model.items())
    out.append(f'<p class="small">model: {html.escape(model)}</p>')
    if settings:
        shown = "; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in settings.items()
            if v not in (None, [], "")
        )
        out.append(f'<p class="small">settings: {html.escape(shown)}</p>')
    out += [
        "<h2 id='metrics'>Metrics</h2><h3>Closed set (every gallery SKU enrolled)</h3>",
        html_table(closed_table([result])),
    ]
    if (table := open_table([result])) is not None:
        out += ["<h3>Open set (unknown SKUs removed from the gallery)</h3>", html_table(table)]
    if (table := robustness_table([result])) is not None:
        out += ["<h3>Robustness (degraded queries)</h3>", html_table(table)]
    out.append("<h2 id='histograms'>Score histograms</h2>")
    if result.open is not None:
        out += [
            (
                "<p>Best cosine score of each query with the unknown SKUs removed from the gallery: "
                "queries of enrolled SKUs (known) and of the removed ones (unknown). Dashed: the threshold.</p>"
            ),
            histogram_svg(
                {"known": result.open.known_scores, "unknown": result.open.unknown_scores},
                threshold=result.open.at_threshold.threshold,
            ),
        ]
    right_scores = [q.top_scores[0] for q in result.queries if q.correct and q.top_scores]
    wrong_scores = [q.top_scores[0] for q in result.queries if not q.correct and q.top_scores]
    out += [
        "<p>Closed set: best score of queries answered right and wrong.</p>",
        histogram_svg({"right": right_scores, "wrong": wrong_scores}),
    ]
    out += [
        "<h2 id='per-sku'>Per-SKU accuracy (closed set, worst first)</h2>",
        _per_sku_bars(result),
        "<h3>Most confused pairs</h3>",
        html_table(confused_table(result)),
    ]
    misses = sorted((q for q in result.queries if not q.correct), key=lambda q: -q.top_scores[0])[:wrong]
    hits = [q for q in result.queries if q.correct][:: max(1, len([q for q in result.queries if q.correct]) // right)]
    out += [
        "<h2 id='examples'>Retrieval examples</h2>",
        (
            f"<p>Query (blue) and its 5 best SKUs, each by its closest gallery photo, with the cosine score: "
            f"green is the query's SKU, red another. Wrong answers ({len(misses)} most confident shown):</p>"
        ),
    ]
    out += [_example(q, thumb) for q in misses]
    out.append(f"<p>Right answers ({len(hits[:right])} spread over the SKUs):</p>")
    out += [_example(q, thumb) for q in hits[:right]]
    if result.open is not None and result.open.unknown_examples:
        out.append(
            "<h3>Unknown products that looked most known</h3><p>Queries of SKUs removed from the gallery, "
            f"highest best score first (threshold {result.open.at_threshold.threshold:.3f}): what the "
            "threshold has to reject.</p>"
        )
        out += [_example(q, thumb) for q in result.open.unknown_examples[:unknown]]
    out.append("</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return path
