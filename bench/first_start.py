"""A first start (empty model cache) and cold `assistant ask`s, code trees side by side.

    python bench/first_start.py [--tree before=/path/to/old/checkout --tree after=.] \\
        [--index DIR] [--runs 5] [--first-runs 1] [--compile] [--out DIR]

For each tree (its `assistant` package put first on PYTHONPATH, the same interpreter):

- first start: `assistant ask "…"` over an empty `ASSISTANT_EMBEDDING_CACHE_DIR`, so it converts
  and exports the model. Wall time, CPU time, the peak of the summed memory (PSS) of the
  process and every child it starts (polled every ~20 ms) and the largest single process's peak
  (`VmHWM`), then the model cache on disk, by directory;
- cold asks: the same question in fresh processes over that cache, the trees alternated run by
  run: wall time to exit (the answer printed), CPU time, peak RSS.

`--index` (default: the seed index built by `assistant index build` in a scratch directory with
the tree given first) is only read. Writes bench/out/first_start.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (  # type: ignore[import-not-found]
    OUT,
    ROOT,
    SEED_CORPUS,
    describe_machine,
    machine,
    md_table,
    tree_bytes,
    workdir,
    write_results,
)

QUESTION = "Quelle est la surface de la Serre numérique de Valenciennes ?"
CLI = "import sys; from assistant.cli import main; sys.argv[0] = 'assistant'; sys.exit(main())"


def tree_env(tree: Path, cache: Path, index: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(tree), "ASSISTANT_EMBEDDING_CACHE_DIR": str(cache),
                "ASSISTANT_INDEX_DIR": str(index), "ASSISTANT_CORPUS_DIR": str(SEED_CORPUS),
                "TOKENIZERS_PARALLELISM": "false"})
    return env


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _status_kb(pid: int, field: str, name: str = "status") -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_tree(cmd: list[str], env: dict[str, str], *, poll: bool, timeout: float = 900
             ) -> dict[str, Any]:
    """Run `cmd`; wall, CPU (user + system, its children's included) and peak memory.

    `poll`: sample its process tree every ~20 ms for the peak of its summed PSS (a page two
    processes share counts once, as after a fork) and of each process's `VmHWM` (reading
    `smaps_rollup` slows the process read: not for timings). Otherwise the peak RSS that
    `wait4` reports, the command's largest process."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err,
                            cwd=env["PYTHONPATH"])  # `-c` puts the cwd first on sys.path
    tree_peak = single_peak = 0
    while poll and os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        pids = _descendants(proc.pid)
        tree_peak = max(tree_peak, sum(_status_kb(p, "Pss:", "smaps_rollup") for p in pids))
        single_peak = max([single_peak] + [_status_kb(p, "VmHWM:") for p in pids])
        if time.perf_counter() - t0 > timeout:
            proc.kill()
        time.sleep(0.02)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "tree_peak_mb": tree_peak / 1024 if poll else None,
            "process_peak_mb": (single_peak if poll else usage.ru_maxrss) / 1024,
            "answer": stdout.strip().splitlines()[:1]}


def cache_listing(cache: Path) -> dict[str, float]:
    """MB by directory two levels down (`<model>/<export>`), and in all."""
    sizes: dict[str, float] = {}
    for top in sorted(cache.iterdir()):
        subs = [p for p in top.iterdir() if p.is_dir()] if top.is_dir() else []
        if subs and not (top / "config.json").exists():
            for sub in sorted(subs):
                sizes[f"{top.name}/{sub.name}"] = tree_bytes(sub) / 1e6
        else:
            sizes[top.name] = (tree_bytes(top) if top.is_dir() else top.stat().st_size) / 1e6
    sizes["total"] = tree_bytes(cache) / 1e6
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=None,
                        help="LABEL=PATH, repeated (default: this checkout)")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--first-runs", type=int, default=1,
                        help="0: reuse the model caches of the last run (cold asks only)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--compile", action="store_true",
                        help="byte-compile each tree's package first (what an install does; "
                        "with PYTHONDONTWRITEBYTECODE set, every start compiles it otherwise)")
    args = parser.parse_args()
    trees = {label: Path(path).resolve() for label, path in
             (t.split("=", 1) for t in args.tree or [f"this checkout={ROOT}"])}
    if args.compile:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for tree in trees.values():
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "assistant")],
                           check=True, env=env)
    # --first-runs 0: cold asks only, over the caches a previous run left
    work = workdir("first_start", args.out) if args.first_runs else args.out / "work/first_start"
    info = machine()
    index = args.index
    if index is None:
        index = work / "index"
        first = next(iter(trees.values()))
        subprocess.run([sys.executable, "-c", CLI, "index", "build"], check=True,
                       env=tree_env(first, work / "index-models", index))
    command = [sys.executable, "-c", CLI, "ask", QUESTION]
    results: dict[str, Any] = {label: {"first": [], "cold": []} for label in trees}
    for _ in range(args.first_runs):
        for label, tree in trees.items():
            cache = work / f"cache-{label}"
            shutil.rmtree(cache, ignore_errors=True)
            run = run_tree(command, tree_env(tree, cache, index), poll=True)
            run["cache_mb"] = cache_listing(cache)
            results[label]["first"].append(run)
            print(label, "first start", run, file=sys.stderr)
    for _ in range(args.runs):
        for label, tree in trees.items():
            run = run_tree(command, tree_env(tree, work / f"cache-{label}", index), poll=False)
            results[label]["cold"].append(run)
            print(label, "cold", run, file=sys.stderr)
    data = {"machine": info, "question": QUESTION, "index": str(index), "trees": {
        k: str(v) for k, v in trees.items()}, "compiled": args.compile, "results": results}
    write_results("first_start", data, markdown(data), args.out)


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = sorted(r[key] for r in runs if r[key] is not None)
    return values[len(values) // 2] if values else None


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for label, r in data["results"].items():
        first = r["first"] or [{k: None for k in ("wall_s", "cpu_s", "tree_peak_mb",
                                                  "process_peak_mb")} | {"cache_mb": {}}]
        cold = r["cold"]
        rows.append([
            label, _med(first, "wall_s"), _med(first, "cpu_s"), _med(first, "tree_peak_mb"),
            _med(first, "process_peak_mb"), first[-1]["cache_mb"].get("total"),
            _med(cold, "wall_s"), " / ".join(f"{c['wall_s']:.2f}" for c in cold),
            _med(cold, "cpu_s"), _med(cold, "process_peak_mb")])
    caches = [[label, name, mb] for label, r in data["results"].items() if r["first"]
              for name, mb in r["first"][-1]["cache_mb"].items() if name != "total"]
    return "\n\n".join([
        "### First start and cold `assistant ask` (`bench/first_start.py`)",
        f"Machine: {describe_machine(data['machine'])}; trees: " + ", ".join(
            f"{k} = `{v}`" for k, v in data["trees"].items()),
        md_table(["tree", "first start s", "CPU s", "peak MB, all processes",
                  "peak MB, largest process", "model cache MB", "cold ask s (median)", "runs s",
                  "CPU s", "peak MB"], rows),
        md_table(["tree", "model cache", "MB"], caches),
        f"First start: `assistant ask` over an empty model cache (conversion and export "
        f"included), on the seed index; cold ask: the same question in a fresh process once the "
        f"cache is made, the trees alternated, {len(rows and data['results'][rows[0][0]]['cold'])}"
        " runs each. Peak MB, all processes: the summed resident memory of the command and its "
        "children (proportional set size: shared pages counted once), polled every ~20 ms. "
        + ("Packages byte-compiled first (as an install does)." if data["compiled"] else
           "Packages not byte-compiled (PYTHONDONTWRITEBYTECODE: each start compiles them).")])


if __name__ == "__main__":
    main()
