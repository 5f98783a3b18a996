"""The benchmarks' charts: SVG files in docs/charts/, drawn from bench/out/*.json (`make bench`).

    python bench/charts.py [--out bench/out] [--charts docs/charts]

Each chart reads one benchmark's JSON (`quality.json`, `speed.json`). A chart whose JSON is
missing (that benchmark was not run) or lacks its numbers is skipped, and its SVG left as it was.
Matplotlib draws headless (Agg) and the SVGs are reproducible: the same JSON gives the same bytes
(no date, fixed element ids, text kept as text). `bench/run_all.py` calls `draw_all` after the
benchmarks and places each chart under its table in docs/benchmarks.md (`place`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import OUT, ROOT, model_label

CHARTS = ROOT / "docs" / "charts"
#: Where the charts are, seen from docs/benchmarks.md.
RELATIVE = "charts"

BLUE, ORANGE, GREY = "#3f51b5", "#f57c00", "#9e9e9e"
KIND_ORDER = ("fact", "paraphrase", "english", "list")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.hashsalt": "assistant-bench",  # fixed element ids: same JSON, same SVG
        "svg.fonttype": "none",  # text stays text (smaller, searchable)
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e0e0e0",
        "axes.axisbelow": True,
    })
    return plt


@dataclass(frozen=True)
class Chart:
    """One SVG: its file name, the benchmark JSON it reads, the table heading it sits under in
    the Benchmarks page, its alt text and the function that draws it (False: nothing to draw)."""

    name: str
    bench: str
    heading: str
    alt: str
    draw: Callable[[Any, dict[str, Any]], bool]


def _source(fig: Any, bench: str, data: dict[str, Any]) -> None:
    m = data.get("machine") or {}
    where = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" if m else "machine unknown"
    fig.text(0.99, 0.005, f"bench/{bench}.py, {m.get('date', 'date unknown')}, {where}",
             ha="right", va="bottom", fontsize=7, color=GREY)


def _plain_log(ax: Any, *axes: str, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log axes labelled 1, 2, 5, 10, 20… (or 1, 10, 100… with `subs=(1.0,)`), not 10^n."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_locator(LogLocator(subs=subs))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def _bars(ax: Any, labels: list[str], series: dict[str, list[float | None]],
          colors: list[str]) -> None:
    """Grouped bars; a missing value (None) is left out, its place kept."""
    width = 0.8 / max(len(series), 1)
    for i, ((name, values), color) in enumerate(zip(series.items(), colors)):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        kept = [(x, v) for x, v in zip(xs, values) if v is not None]
        bars = ax.bar([x for x, _ in kept], [v for _, v in kept], width * 0.95, label=name,
                      color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=6.5, padding=1)
    ax.set_xticks(range(len(labels)), labels)


def draw_quality(plt: Any, data: dict[str, Any]) -> bool:
    """Quality by kind of question, the dev questions (held out: the answer scorer is fitted on
    our own questions only) beside our own file tests/data/heldout_questions.jsonl (part of
    the scorer's training data: in sample), for the default pipeline."""
    dev = (data.get("project") or {}).get("by_kind")
    held = (data.get("project_heldout") or {}).get("by_kind")
    if not dev or not held:
        return False
    kinds = [k for k in KIND_ORDER if k in dev or k in held]
    kinds += sorted(k for k in {*dev, *held} if k not in kinds and k != "out_of_scope")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True,
                             gridspec_kw={"width_ratios": [4, 4, 5]})
    sides = {"dev files (held out)": dev, "our questions (in the scorer's training)": held}

    def label(kind: str) -> str:
        counts = "/".join(str((side.get(kind) or {}).get("questions", 0))
                          for side in sides.values())
        return f"{kind.replace('_', ' ')}\n(n={counts})"

    for ax, (metric, title) in zip(axes[:2], (("hit@1", "hit@1"), ("hit@5", "hit@5"))):
        series = {name: [(side.get(k) or {}).get(metric) for k in kinds]
                  for name, side in sides.items()}
        _bars(ax, [label(k) for k in kinds], series, [BLUE, ORANGE])
        ax.set_title(title)
    answered = [*kinds, "out_of_scope"]
    series = {name: [(side.get(k) or {}).get("refusal_accuracy" if k == "out_of_scope"
                                             else "answer_match") for k in answered]
              for name, side in sides.items()}
    _bars(axes[2], [label(k).replace("out of scope", "out of\nscope") for k in answered],
          series, [BLUE, ORANGE])
    axes[2].set_title("answer match (out of scope: refused)")
    axes[0].set_ylim(0, 1.12)
    axes[0].set_ylabel("share of the questions")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=2, fontsize=8, frameon=False)
    model = data.get("model", "")
    fig.suptitle(f"Quality by kind of question ({model}, k={data.get('k', '?')})", fontsize=10,
                 x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _source(fig, "quality", data)
    return True


def draw_latency(plt: Any, data: dict[str, Any]) -> bool:
    """Distribution of one question's latency, per call and model, in a warm process."""
    lat = data.get("latency") or {}
    models = lat.get("models") or []
    if not models:
        return False
    rows = [("embed", "first", "embed_query, first in process"),
            ("search", "cold", "search, cold"), ("ask", "cold", "ask, cold"),
            ("search", "repeated", "search, repeated"), ("ask", "repeated", "ask, repeated")]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) * len(models) + 1.4))
    colors = [BLUE, ORANGE, GREY]
    ticks, labels = [], []
    for r, (call, phase, text) in enumerate(rows):
        for i, model in enumerate(models):
            s = lat.get(f"{call}|{phase}|{model}")
            if not s:
                continue
            y = r * (len(models) + 1) + i
            color = colors[i % len(colors)]
            if s.get("all_ms"):
                ax.boxplot([s["all_ms"]], positions=[y], orientation="horizontal", widths=0.7,
                           patch_artist=True, showfliers=True,
                           boxprops={"facecolor": color, "alpha": 0.35, "edgecolor": color},
                           medianprops={"color": color, "linewidth": 2},
                           whiskerprops={"color": color}, capprops={"color": color},
                           flierprops={"marker": ".", "markersize": 3,
                                       "markeredgecolor": color})
            elif s.get("p50") is not None:  # an older JSON: p50 and p95 only
                ax.plot([s["p50"], s.get("p95") or s["p50"]], [y, y], color=color, linewidth=2)
                ax.plot([s["p50"]], [y], "o", color=color)
            else:
                continue
            if i == 0:
                ticks.append(y + (len(models) - 1) / 2)
                labels.append(text)
    ax.set_yticks(ticks, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_log(ax, "x")
    ax.set_xlabel("ms per call (log scale): box = quartiles, line = median")
    for i, model in enumerate(models):
        ax.plot([], [], color=colors[i % len(colors)], linewidth=6, alpha=0.5,
                label=model_label(model))
    targets = data.get("targets") or {}
    for key, text, style in (("search_p50_ms", "search", "--"), ("ask_p50_ms", "ask", ":")):
        if targets.get(key):
            ax.axvline(targets[key], color=GREY, linestyle=style, linewidth=1,
                       label=f"target: cold {text} p50 ≤ {targets[key]:g} ms")
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower left", ncol=2, fontsize=7.5, frameon=False)
    n = lat.get("questions", "?")
    fig.suptitle(f"Query latency, one warm process ({data.get('backend', '?')}, {n} questions, "
                 "one thread per request)", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _source(fig, "speed", data)
    return True


def draw_update(plt: Any, data: dict[str, Any]) -> bool:
    """Update cost and index size against the number of articles (synthetic short articles)."""
    rows = data.get("incremental") or []
    if not rows:
        return False
    articles = [r["articles"] for r in rows]
    sizes = [r.get("index_mb") for r in rows]
    panels = 2 if any(s is not None for s in sizes) else 1
    fig, axes = plt.subplots(1, panels, figsize=(9 if panels == 2 else 5.5, 3.4), squeeze=False)
    ax = axes[0][0]
    for key, text, color, style in (
            ("build", "full build", GREY, "o--"),
            ("add_one_s", "add 1 article", BLUE, "o-"),
            ("remove_one_s", "remove 1 article", ORANGE, "s-"),
            ("no_change_s", "no change", "#43a047", "^-")):
        if key == "build":
            values = [r["build"].get("build_s") for r in rows]
        else:
            values = [(r.get(key) or {}).get("median") for r in rows]
        kept = [(a, max(v, 1e-3)) for a, v in zip(articles, values) if v is not None]
        ax.plot([a for a, _ in kept], [v for _, v in kept], style, color=color, label=text,
                markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax, "x", "y", subs=(1.0,))
    ax.set_xlabel("articles in the index")
    ax.set_ylabel("seconds (median)")
    ax.set_title("Update cost")
    ax.legend(fontsize=7.5, framealpha=0.9)
    if panels == 2:
        ax = axes[0][1]
        kept = [(a, s) for a, s in zip(articles, sizes) if s is not None]
        ax.plot([a for a, _ in kept], [s for _, s in kept], "o-", color=BLUE)
        for a, s in kept:
            ax.annotate(f"{s:.1f} MB", (a, s), textcoords="offset points", xytext=(-6, 6),
                        ha="right", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log(ax, "x", "y", subs=(1.0,))
        ax.set_xlabel("articles in the index")
        ax.set_ylabel("MB on disk")
        ax.set_title("Index size (every file of the index directory)")
    chunks = "/".join(str(r.get("chunks", "?")) for r in rows)
    fig.suptitle("Incremental update against corpus size (synthetic short articles, "
                 f"{chunks} chunks)", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _source(fig, "speed", data)
    return True


def draw_memory(plt: Any, data: dict[str, Any]) -> bool:
    """Peak resident memory of each kind of process, with the serving target."""
    default = data.get("default_model")
    st = data.get("startup") or {}
    bars: list[tuple[str, float | None]] = [
        ("python -c pass", (st.get("python") or {}).get("max_rss_mb")),
        ("import assistant", (st.get("import") or {}).get("max_rss_mb")),
        ("assistant search, fresh process", (st.get("search") or {}).get("max_rss_mb")),
        ("assistant ask, fresh process", (st.get("ask") or {}).get("max_rss_mb")),
    ]
    for model, r in (data.get("serving") or {}).items():
        bars.append((f"serving, {model_label(model)}", r.get("max_rss_mb")))
    if data.get("serving_large"):
        n = (data.get("incremental") or [{}])[-1].get("articles", "?")
        bars.append((f"serving, {n}-article index", data["serving_large"].get("max_rss_mb")))
    bars.append(("assistant index build, seed corpus",
                 (data.get("seed_build") or {}).get("max_rss_mb")))
    for r in data.get("incremental") or []:
        bars.append((f"index build, {r['articles']} articles",
                     (r.get("build") or {}).get("max_rss_mb")))
    bars = [(label, v) for label, v in bars if v is not None]
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(bars) + 1.2))
    labels = [label for label, _ in bars]
    values = [v for _, v in bars]
    colors = [ORANGE if "serving" in label else BLUE for label in labels]
    drawn = ax.barh(range(len(bars)), values, color=colors)
    ax.bar_label(drawn, fmt="%.0f", fontsize=7, padding=2)
    ax.set_yticks(range(len(bars)), labels)
    ax.invert_yaxis()
    target = (data.get("targets") or {}).get("serving_mb")
    if target:
        ax.axvline(target, color=GREY, linestyle="--", linewidth=1)
        ax.text(target, 0, f"serving target {target:g} MB ", fontsize=7, color=GREY,
                ha="right", va="center")
    ax.set_xlabel("peak RSS of the process, MB")
    fig.suptitle("Peak memory of each kind of process"
                 + (f" (default model: {Path(default).name})" if default else ""), fontsize=10,
                 x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _source(fig, "speed", data)
    return True


CHARTS_DRAWN = (
    Chart("quality-by-kind", "quality", "### Retrieval and answer quality",
          "Quality by kind of question, dev and held-out questions side by side", draw_quality),
    Chart("query-latency", "speed", "### Query latency",
          "Distribution of search and ask latencies per model", draw_latency),
    Chart("update-cost", "speed", "### Incremental update",
          "Update cost and index size against the number of articles", draw_update),
    Chart("memory", "speed", "### Fresh processes and memory",
          "Peak memory of each kind of process", draw_memory),
)


def draw_all(out: Path = OUT, charts: Path = CHARTS) -> dict[str, Path]:
    """Every chart whose benchmark JSON is in `out`, as `charts/<name>.svg`; returns the
    charts written. The others are skipped (said on stderr) and their old SVGs kept."""
    plt = _pyplot()
    written: dict[str, Path] = {}
    for chart in CHARTS_DRAWN:
        source = out / f"{chart.bench}.json"
        if not source.exists():
            print(f"chart {chart.name}: no {source}, skipped", file=sys.stderr)
            continue
        data = json.loads(source.read_text(encoding="utf-8"))
        plt.close("all")
        if not chart.draw(plt, data):
            print(f"chart {chart.name}: {source} lacks its numbers, skipped", file=sys.stderr)
            continue
        charts.mkdir(parents=True, exist_ok=True)
        path = charts / f"{chart.name}.svg"
        plt.gcf().savefig(path, format="svg", metadata={"Date": None})
        plt.close("all")
        written[chart.name] = path
    return written


def place(body: str, charts: Path = CHARTS) -> str:
    """The Benchmarks markdown with each chart that exists in `charts` as an image at the end of
    the part its table's heading opens (before the next `###` heading). A chart whose table is
    not there (its benchmark failed or was not run) is left out; one already placed is kept."""
    for chart in CHARTS_DRAWN:
        image = f"![{chart.alt}]({RELATIVE}/{chart.name}.svg)"
        start = body.find(chart.heading)
        if start < 0 or image in body or not (charts / f"{chart.name}.svg").exists():
            continue
        following = body.find("\n###", start + len(chart.heading))
        at = len(body) if following < 0 else following
        body = body[:at].rstrip("\n") + f"\n\n{image}\n" + body[at:]
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the benchmarks' JSON files")
    parser.add_argument("--charts", type=Path, default=CHARTS, help="where the SVGs go")
    args = parser.parse_args()
    for name, path in draw_all(args.out, args.charts).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
