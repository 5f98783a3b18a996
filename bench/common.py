"""What the benchmark scripts share: paths, the machine, timing, peak memory, output files.

Every benchmark writes `bench/out/<name>.json` (numbers + machine) and `bench/out/<name>.md`
(the tables for the docs); `bench/run_all.py` stitches the markdown into docs/benchmarks.md
and draws the charts of `bench/charts.py` into docs/charts/.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SEED_CORPUS = ROOT / "corpus"
_SHARED_DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
DEV_QUESTIONS = _SHARED_DEV if _SHARED_DEV.exists() else ROOT / "tests/data/dev_questions.jsonl"

if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere imports the package in ROOT
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, load and library versions: printed with every table."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        ram_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    versions = {}
    for package in ("torch", "onnxruntime", "openvino", "faiss-cpu", "sentence-transformers",
                    "bm25s", "numpy",
                    "langchain-community", "langchain-text-splitters"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb,
        "python": platform.python_version(), "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def describe_machine(info: dict[str, Any]) -> str:
    v = info["versions"]
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}, "
        f"faiss-cpu {v.get('faiss-cpu')}, "
        f"sentence-transformers {v.get('sentence-transformers')}, bm25s {v.get('bm25s')} "
        f"(load average at start {info['load_average'][0]})"
    )


def ms_stats(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / mean in milliseconds of a list of durations in seconds."""
    if not seconds:
        return {"p50": None, "p95": None, "mean": None, "n": 0}
    values = np.asarray(seconds, dtype=np.float64) * 1000
    return {"p50": round(float(np.percentile(values, 50)), 2),
            "p95": round(float(np.percentile(values, 95)), 2),
            "mean": round(float(values.mean()), 2), "n": len(values)}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}".replace(",", " ")
        return f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict[str, Any], markdown: str, out: Path = OUT) -> Path:
    """bench/out/<name>.json and .md; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    md = out / f"{name}.md"
    md.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return md


@dataclass
class Measured:
    """A finished child process: wall time, its own peak RSS, exit code and output."""

    wall_s: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def _hwm_kb(pid: int) -> int | None:
    """Peak resident set of a live process (`VmHWM`, per address space: exec resets it)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None,
                 timeout: float = 600) -> Measured:
    """Run `cmd`, polling its peak RSS every few ms until it exits.

    `getrusage`/`wait4`'s ru_maxrss is not used: on Linux a child's value starts from its
    parent's RSS at fork time, so a benchmark holding a model would inflate every child.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = 0
        while True:
            hwm = _hwm_kb(proc.pid)
            if hwm:
                peak = max(peak, hwm)
            if proc.poll() is not None:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.005 if time.perf_counter() - t0 < 1 else 0.02)  # VmHWM only grows
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        code = proc.returncode if proc.returncode is not None else -9
        return Measured(wall, peak / 1024, code, out.read().decode("utf-8", "replace"),
                        err.read().decode("utf-8", "replace"))


def assistant_command() -> list[str]:
    """The installed `assistant` console script of this interpreter, else `python -m`."""
    script = Path(sys.executable).parent / "assistant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant.cli"]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ASSISTANT_INDEX_DIR", None)
    env.pop("ASSISTANT_CORPUS_DIR", None)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


#: Question files whose texts `question_pool` draws from (the ones that exist), in this order.
QUESTION_FILES = (DEV_QUESTIONS, DEV_QUESTIONS.with_name("dev_questions_hard.jsonl"),
                  ROOT / "tests/data/heldout_questions.jsonl")
#: Rewordings that make more distinct question texts when the files hold too few.
_REWORDINGS = ("{q}", "Selon le corpus, {q}", "Dites-moi : {q}", "Je voudrais savoir : {q}")


def question_pool(n: int) -> list[str]:
    """`n` distinct question texts: the dev questions, then the hard and held-out ones, then
    rewordings of them. Distinct texts, so that a question-vector cache never answers."""
    from assistant.evaluation import load_questions

    base = list(dict.fromkeys(q.question for path in QUESTION_FILES if path.exists()
                              for q in load_questions(path)))
    texts = [form.format(q=q) for form in _REWORDINGS for q in base]
    if n > len(texts):
        raise ValueError(f"{n} distinct questions asked, {len(texts)} available")
    return texts[:n]


def compared_models() -> list[str]:
    """The embedding models the speed benchmarks compare: the default one first, then
    all-MiniLM-L6-v2 (the previous default)."""
    from assistant.config import E5_MODEL_NAME, PACKAGED_MODEL, Settings

    return list(dict.fromkeys([Settings().embedding_model, E5_MODEL_NAME, PACKAGED_MODEL]))


def model_label(name: str) -> str:
    """A model's usual name in tables ("all-MiniLM-L6-v2", not its package's name)."""
    from assistant.config import PACKAGED_MODEL, Settings

    label = "all-MiniLM-L6-v2" if name == PACKAGED_MODEL else Path(name).name
    return label + (" (default)" if name == Settings().embedding_model else "")


def tree_bytes(directory: Path) -> int:
    """Bytes of every file under `directory` (an index on disk, all its generations)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def workdir(name: str, out: Path = OUT) -> Path:
    """A fresh scratch directory under bench/out/work/ (git-ignored)."""
    import shutil

    path = out / "work" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
