"""Run every benchmark and rewrite the Benchmarks page, docs/benchmarks.md (`make bench`).

Runs bench/quality.py, speed.py, embed_speed.py, vocabulary.py, export_parity.py,
first_start.py, scale.py, update_cost.py, stores.py, load.py and soak.py (20 minutes), each in
its own process (its log in bench/out/<name>.log), draws the charts of bench/charts.py from
their JSON into docs/charts/*.svg, then replaces the text between `<!-- bench:start -->` and
`<!-- bench:end -->` in docs/benchmarks.md with their tables, each chart under its table, the
machine and the commands to reproduce. Without the markers the page is left alone and the
section is printed (and saved as bench/out/benchmarks.md).

    python bench/run_all.py [--quick] [--only quality speed ...] [--page PATH] [--no-page]
                            [--charts DIR]
    python bench/run_all.py --assemble [--only quality]   # rerun only these, keep the rest
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import charts
from common import BENCH, OUT, ROOT, child_env, describe_machine, machine

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
BENCHES = ("quality", "speed", "embed_speed", "vocabulary", "export_parity", "first_start",
           "scale", "update_cost", "stores", "postgres", "load", "soak")
QUICK_FLAGS = {"quality": ["--quick"], "speed": ["--quick"], "scale": ["--quick"],
               "embed_speed": ["--quick"], "update_cost": ["--quick"], "stores": ["--quick"],
               "postgres": ["--quick"],
               "load": ["--clients", "4", "--questions", "3", "--burst", "6"],
               "soak": ["--minutes", "2"], "first_start": ["--runs", "2"]}
COMMANDS = {
    "quality": "python bench/quality.py",
    "speed": "python bench/speed.py",
    "scale": "python bench/scale.py",
    "embed_speed": "python bench/embed_speed.py",
    "vocabulary": "python bench/vocabulary.py",
    "export_parity": "python bench/export_parity.py",
    "first_start": "python bench/first_start.py",
    "update_cost": "python bench/update_cost.py",
    "stores": "python bench/stores.py",
    "postgres": "python bench/postgres.py",
    "load": "python bench/load.py",
    "soak": "python bench/soak.py",
}


def run_bench(name: str, quick: bool, out: Path) -> dict[str, Any]:
    """One benchmark script in a child process; its stdout/stderr go to bench/out/<name>.log."""
    script = BENCH / f"{name}.py"
    flags = QUICK_FLAGS.get(name, []) if quick else []
    flags = [*flags, "--out", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w", encoding="utf-8") as log:
        code = subprocess.call([sys.executable, str(script), *flags], stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT, env=child_env())
    seconds = time.perf_counter() - t0
    print(f"{name}: exit {code} in {seconds:.0f} s (log: {out / f'{name}.log'})", file=sys.stderr)
    return {"name": name, "exit": code, "seconds": round(seconds, 1), "flags": flags,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def section(results: list[dict[str, Any]], info: dict[str, Any], out: Path, quick: bool,
            chart_dir: Path = charts.CHARTS) -> str:
    """The markdown that goes between the page's markers, with the charts in `chart_dir`."""
    total = sum(r["seconds"] for r in results)
    runs = ", ".join(f"{r['name']} {r.get('date', info['date'])} ({r['seconds']:.0f} s)"
                     for r in results)
    parts = [
        f"Measured on {describe_machine(info)}; runs: {runs}, {total / 60:.0f} min in all"
        f"{' (--quick)' if quick else ''}. Other jobs may have shared the cores: compare "
        "numbers within one table, not across runs.",
        "",
    ]
    for r in results:
        md = out / f"{r['name']}.md"
        if r["exit"] != 0:
            parts += [f"**{r['name']}** failed (exit {r['exit']}); see "
                      f"`bench/out/{r['name']}.log`.", ""]
        elif md.exists():  # the machine is said once, at the top
            paragraphs = md.read_text(encoding="utf-8").strip().split("\n\n")
            kept = [p for p in paragraphs if not p.startswith("Machine: ")]
            parts += ["\n\n".join(kept), ""]
        else:
            parts += [f"**{r['name']}** ran ({r['seconds']:.0f} s) and wrote no table; see "
                      f"`bench/out/{r['name']}.log`.", ""]
    parts += [
        "#### Reproduce",
        "",
        "```sh",
        "make bench                     # everything below, then rewrites this section",
        "python bench/charts.py         # only the charts, from bench/out/*.json",
        *[f"{COMMANDS[r['name']]:<30} # {r['seconds']:.0f} s here" for r in results],
        "python bench/run_all.py --quick   # a small version of everything (a few minutes)",
        "python bench/run_all.py --assemble --only speed   # rerun one, keep the others",
        "assistant eval /path/to/questions.jsonl [--k 5] [--json]",
        "```",
        "",
        "Numbers and per-question details: `bench/out/*.json` (git-ignored).",
    ]
    return charts.place("\n".join(parts).strip(), chart_dir)


def replace_section(page: str, body: str) -> str | None:
    """The page's text with the markers' content replaced; None when a marker is missing."""
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        return None
    return page[: start + len(START)] + "\n" + body + "\n" + page[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small versions (smoke run)")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    parser.add_argument("--page", "--readme", dest="page", type=Path,
                        default=ROOT / "docs" / "benchmarks.md", help="the page to rewrite")
    parser.add_argument("--no-page", "--no-readme", dest="no_page", action="store_true",
                        help="leave the page alone")
    parser.add_argument("--charts", type=Path, default=charts.CHARTS,
                        help="where the SVG charts go (docs/charts: the page shows them)")
    parser.add_argument("--assemble", action="store_true",
                        help="run nothing: rebuild the section from the last run's outputs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.assemble:
        last = json.loads((args.out / "run_all.json").read_text(encoding="utf-8"))
        info, results = last["machine"], last["results"]
        reruns = {n: run_bench(n, args.quick, args.out) for n in (args.only or ())}
        results = [reruns.pop(r["name"], r) for r in results] + list(reruns.values())
    else:
        info = machine()
        names = [n for n in (args.only or BENCHES) if (BENCH / f"{n}.py").exists()]
        results = [run_bench(name, args.quick, args.out) for name in names]
    charts.draw_all(args.out, args.charts)
    body = section(results, info, args.out, args.quick, args.charts)
    (args.out / "benchmarks.md").write_text(body + "\n", encoding="utf-8")
    (args.out / "run_all.json").write_text(
        json.dumps({"machine": info, "results": results}, indent=2), encoding="utf-8")
    if not args.no_page:
        text = args.page.read_text(encoding="utf-8") if args.page.exists() else ""
        updated = replace_section(text, body)
        if updated is None:
            print(body)
            print(f"\n{args.page} has no {START} … {END} markers: section printed above and "
                  f"saved to {args.out / 'benchmarks.md'}; the page left unchanged.",
                  file=sys.stderr)
        elif updated != text:
            args.page.write_text(updated, encoding="utf-8")
            print(f"{args.page}: Benchmarks section rewritten.", file=sys.stderr)
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
