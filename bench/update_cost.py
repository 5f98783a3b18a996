"""What an index update costs at scale, and how fast a fresh process starts.

1. Update cost (issue 11): N synthetic articles of real length (`long_article`: ~10-20 chunks
   each, seeded), indexed with the local stores (catalog + FAISS + BM25) in this process. Full
   build time (informational); index size on disk and its bytes per chunk beyond the vectors;
   then `builder.update` after adding one article file, changing one, removing one, and with no
   change, each repeated and timed in this process with the embedder already loaded: seconds,
   bytes written (this process's `write_bytes` in /proc/self/io) and their share of the index.
   The embedder is `HashingEmbedder` (deterministic 384-d unit vectors from a hash of the text):
   this measures the stores' mechanics, not the model.
2. Cold start (issue 11, item 4), with the real default model on the seed corpus, each in a fresh
   process: `import assistant`, `assistant search "…" --json` to its JSON, `assistant serve`
   until its port answers HTTP (`GET /api/health`).

    python bench/update_cost.py [--articles 10000] [--reps 3] [--cold-reps 3] [--no-cold]
                                [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    SEED_CORPUS,
    assistant_command,
    child_env,
    describe_machine,
    machine,
    md_table,
    question_pool,
    run_measured,
    workdir,
    write_results,
)
from synthetic import CITIES, FIRST, KINDS, LAST, MONTHS, PARTNERS, SECTORS, SENTENCES, _name

from assistant import Settings
from assistant.index.builder import build, update
from assistant.index.generations import current_generation, read_manifest

DIM = 384
#: Targets of issue 11 (10,000 articles; in-process update with a loaded embedder).
TARGETS = {"add_s": 1.0, "add_share": 0.05, "remove_s": 1.0, "no_change_s": 0.5,
           "extra_bytes_per_chunk": 3072.0, "search_s": 2.0, "import_s": 0.3}
CASES = ("add", "change", "remove", "no_change")
MAX_REPS = 20  # runs of each case, at most (the profiled update is one more)
CASE_LABELS = {"add": "add 1 article", "change": "change 1 article (last paragraph rewritten)",
               "remove": "remove 1 article", "no_change": "no change"}

#: More sentence shapes than `synthetic.SENTENCES`, so a long article does not repeat itself.
MORE = (
    "Selon {person}, {org} devra doubler ses effectifs pour répondre à la demande.",
    "En {year}, {n_startups} projets ont été présentés au comité de sélection de {org}.",
    "Le budget annuel atteint {amount} millions d'euros, dont {share} % de fonds privés.",
    "Les entreprises accompagnées ont créé {jobs} emplois dans la région de {city}.",
    "Un partenariat avec {partner} permet d'ouvrir {weeks} places supplémentaires.",
    "La prochaine promotion comptera {members} participants venus de toute la France.",
    "Les ateliers du jeudi sur {sector} réunissent en moyenne {events} personnes.",
    "« Le plus dur reste le financement des premières années », reconnaît {person}.",
    "Une antenne ouvrira à {other_city} en {later}, avec une équipe de {weeks} personnes.",
    "Le chiffre d'affaires cumulé des start-up hébergées dépasse {amount} millions d'euros.",
    "{org} a signé {events} conventions avec des laboratoires publics depuis {year}.",
    "Le conseil d'administration réunit {weeks} membres, dont des élus de {city}.",
)
TEMPLATES = SENTENCES + MORE


def _values(rng: random.Random, fixed: dict[str, Any]) -> dict[str, Any]:
    """The figures of one paragraph (the organisation, city and person stay the article's)."""
    year = int(fixed["year"])
    return {
        **fixed, "partner": rng.choice(PARTNERS), "month": rng.choice(MONTHS),
        "day": rng.randint(1, 28), "later": year + rng.randint(2, 6),
        "n_startups": rng.randint(5, 120), "amount": rng.randint(1, 60),
        "share": rng.randint(5, 80), "surface": rng.randint(3, 200) * 100,
        "visitors": rng.randint(2, 90) * 1000, "events": rng.randint(10, 400),
        "weeks": rng.randint(6, 26), "members": rng.randint(20, 600),
        "jobs": rng.randint(10, 900), "other_city": rng.choice(CITIES),
    }


def _paragraph(rng: random.Random, fixed: dict[str, Any]) -> str:
    values = _values(rng, fixed)
    return " ".join(t.format(**values) for t in rng.sample(TEMPLATES, k=rng.randint(4, 6)))


def long_article(i: int, *, seed: int = 0, edit: int = 0) -> str:
    """Article `i`: a date line, a title line and 11-20 paragraphs of 4-6 sentences (~10-20
    chunks of the default 500-character splitter). `edit` > 0 gives the same article with its
    date line and last paragraph rewritten (an edited article)."""
    rng = random.Random(f"long-{seed}-{i}")
    fixed = {"org": f"{rng.choice(KINDS).capitalize()} {_name(rng)} n°{i}",
             "city": rng.choice(CITIES), "sector": rng.choice(SECTORS),
             "year": rng.randint(2012, 2024),
             "person": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}
    paragraphs = [_paragraph(rng, fixed) for _ in range(rng.randint(11, 20))]
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    if edit:
        edited = random.Random(f"long-{seed}-{i}-edit-{edit}")
        paragraphs[-1] = _paragraph(edited, fixed)
        day = edited.randint(1, 28)
    date = f"Mis à jour le {day:02d}/{month:02d}/{fixed['year']}"
    title = f"{fixed['org']} : {fixed['city']} mise sur {fixed['sector']}"
    return "\n".join([date, title, "\n\n".join(paragraphs)]) + "\n"


def article_path(directory: Path, i: int) -> Path:
    return directory / f"article-{i:06d}.txt"


def write_articles(directory: Path, n: int, *, start: int = 0, seed: int = 0) -> list[Path]:
    """Articles `start .. start+n-1` as `article-000123.txt`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = article_path(directory, i)
        path.write_text(long_article(i, seed=seed), encoding="utf-8")
        paths.append(path)
    return paths


class HashingEmbedder:
    """Deterministic unit vectors from a hash of the text (SHAKE-256 bytes as int8 components):
    the same text always gives the same vector, different texts near-orthogonal ones. No model,
    no meaning: for measuring the index's stores, not retrieval."""

    def __init__(self, settings: Settings, dimension: int = DIM) -> None:
        self.model_id = settings.embedding_model  # the index records the settings' identity
        self.dimension = dimension
        self.calls = 0
        self.texts = 0

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        raw = b"".join(hashlib.shake_256(t.encode("utf-8")).digest(self.dimension)
                       for t in texts)
        codes = np.frombuffer(raw, dtype=np.int8).reshape(len(texts), self.dimension)
        vectors = codes.astype(np.float32) + 0.5  # int8 is centred on -0.5
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_passages([text])[0]

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_id, "backend": "hashing (bench)", "dimension": self.dimension}


# -- measuring ----------------------------------------------------------------------------------


def io_counters() -> dict[str, int] | None:
    """This process's /proc/self/io (None where the kernel does not expose it)."""
    try:
        text = Path("/proc/self/io").read_text(encoding="ascii")
    except OSError:
        return None
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


def write_bytes_counted(directory: Path) -> bool:
    """Whether `write_bytes` sees a file written in `directory` (not on every filesystem: tmpfs
    and some overlays report 0); checked once, next to the index, before trusting it."""
    before = io_counters()
    if before is None:
        return False
    probe = directory / f".io-probe-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    with open(probe, "wb") as fh:
        fh.write(os.urandom(1 << 20))
        fh.flush()
        os.fsync(fh.fileno())
    after = io_counters()
    probe.unlink()
    return after is not None and after["write_bytes"] - before["write_bytes"] >= 1 << 20


def index_files(index_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Every regular file under the index: relative path -> (size, mtime_ns, inode)."""
    files = {}
    for path in index_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            files[str(path.relative_to(index_dir))] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return files


def _part(relative: str) -> str:
    head = relative.split(os.sep)
    if head[0] == "stores" and len(head) > 1:
        return f"stores/{head[1]}"
    return head[0] if len(head) > 1 else "other"


def index_size(index_dir: Path) -> dict[str, Any]:
    """Bytes on disk (file sizes) of the whole index directory, and by part."""
    files = index_files(index_dir)
    parts: dict[str, int] = {}
    for relative, (size, _, _) in files.items():
        parts[_part(relative)] = parts.get(_part(relative), 0) + size
    generations = {p.split(os.sep)[1] for p in files if p.startswith("generations" + os.sep)}
    return {"bytes": sum(parts.values()), "parts": dict(sorted(parts.items())),
            "files": len(files), "generations": len(generations)}


def manifest_counts(settings: Settings) -> dict[str, Any]:
    manifest = read_manifest(current_generation(settings.index_dir))
    stores = manifest["stores"]
    return {"articles": int(manifest["corpus"]["articles"]),
            "chunks": int(manifest["corpus"]["chunks"]),
            "chunk_vectors": int(stores["chunks"]["count"]),
            "sentence_vectors": int(stores["sentences"]["count"]),
            "dimension": int(manifest["embedding"]["dimension"]),
            "kinds": {role: stores[role].get("kind") for role in ("chunks", "sentences")}}


def size_report(settings: Settings) -> dict[str, Any]:
    """Index size, the vectors' raw size (4 * d * (chunk vectors + sentence vectors)) and the
    bytes per chunk beyond them."""
    size, counts = index_size(settings.index_dir), manifest_counts(settings)
    vectors = 4 * counts["dimension"] * (counts["chunk_vectors"] + counts["sentence_vectors"])
    extra = size["bytes"] - vectors
    return {**size, **counts, "vector_bytes": vectors, "extra_bytes": extra,
            "extra_bytes_per_chunk": round(extra / max(counts["chunks"], 1), 1),
            "parts_per_chunk": {k: round(v / max(counts["chunks"], 1), 1)
                                for k, v in size["parts"].items()}}


def measured_update(settings: Settings, embedder: HashingEmbedder) -> dict[str, Any]:
    """One `update` in this process: seconds, bytes written (write_bytes), bytes passed to
    write() (wchar), bytes read (rchar), and the files it created or changed."""
    before_files = index_files(settings.index_dir)
    io0 = io_counters()
    t0 = time.perf_counter()
    report = update(settings, lambda: embedder, progress=False)
    seconds = time.perf_counter() - t0
    io1 = io_counters()
    after_files = index_files(settings.index_dir)
    new = {p: s for p, (s, _, _) in after_files.items() if p not in before_files}
    changed = {p: s for p, (s, m, i) in after_files.items()
               if p in before_files and before_files[p] != (s, m, i)}
    result: dict[str, Any] = {
        "seconds": round(seconds, 4), "generation": report.generation,
        "added": len(report.added), "changed": len(report.changed),
        "removed": len(report.removed), "chunks_embedded": report.chunks_embedded,
        "chunks_reused": report.chunks_reused, "sentences_embedded": report.sentences_embedded,
        "new_files": new, "new_file_bytes": sum(new.values()), "changed_files": changed,
        "deleted_files": sorted(p for p in before_files if p not in after_files),
    }
    if io0 is not None and io1 is not None:
        for key in ("write_bytes", "wchar", "rchar", "read_bytes", "cancelled_write_bytes"):
            result[key] = io1[key] - io0[key]
    return result


def _mutations(corpus: Path, n: int, rep: int) -> dict[str, Callable[[], None]]:
    """What each case does to the corpus before its update (rep-th repetition)."""
    added = n + rep  # a new article number
    # two existing articles, never picked before: one to edit, one to delete (seeded)
    edited, removed = random.Random(f"update-cost-{n}").sample(range(n), k=2 * MAX_REPS)[
        2 * rep: 2 * rep + 2]

    def add() -> None:
        write_articles(corpus, 1, start=added)

    def change() -> None:
        article_path(corpus, edited).write_text(long_article(edited, edit=rep + 1),
                                                encoding="utf-8")

    def remove() -> None:
        article_path(corpus, removed).unlink()

    return {"add": add, "change": change, "remove": remove, "no_change": lambda: None}


def update_costs(settings: Settings, embedder: HashingEmbedder, n: int, reps: int,
                 profile: bool = True) -> dict[str, Any]:
    """Build the index of the N articles in `settings.corpus_dir`, weigh it, then time each
    case `reps` times (interleaved: add, change, remove, no change), then profile one more
    update of each case that changes the index."""
    t0 = time.perf_counter()
    built = build(settings, lambda: embedder, progress=False)
    build_s = time.perf_counter() - t0
    size = size_report(settings)
    index_bytes = size["bytes"]
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for rep in range(reps):
        for case, mutate in _mutations(settings.corpus_dir, n, rep).items():
            mutate()
            runs[case].append(measured_update(settings, embedder))
    checks = {
        "add": all(r["added"] == 1 and r["generation"] for r in runs["add"]),
        "change": all(r["changed"] == 1 and r["generation"] for r in runs["change"]),
        "remove": all(r["removed"] == 1 and r["generation"] for r in runs["remove"]),
        "no_change": all(r["generation"] is None for r in runs["no_change"]),
    }
    if not all(checks.values()):
        raise RuntimeError(f"an update did not do what was expected: {checks}")
    cases = {}
    for case, rs in runs.items():
        written = [r["write_bytes"] for r in rs if "write_bytes" in r]
        cases[case] = {
            "seconds": [r["seconds"] for r in rs],
            "median_s": round(statistics.median(r["seconds"] for r in rs), 4),
            "median_write_bytes": (int(statistics.median(written))
                                   if len(written) == len(rs) else None),
            "median_new_file_bytes": int(statistics.median(r["new_file_bytes"] for r in rs)),
            "median_wchar": (int(statistics.median(r["wchar"] for r in rs))
                             if "wchar" in rs[0] else None),
            "median_rchar": (int(statistics.median(r["rchar"] for r in rs))
                             if "rchar" in rs[0] else None),
            "runs": rs,
        }
        if cases[case]["median_write_bytes"] is not None:
            cases[case]["write_share"] = round(cases[case]["median_write_bytes"] / index_bytes, 5)
    result: dict[str, Any] = {
        "articles": n, "reps": reps,
        "build": {"seconds": round(build_s, 2), "chunks": built.chunks,
                  "chunks_embedded": built.chunks_embedded,
                  "sentences_embedded": built.sentences_embedded},
        "size": size, "cases": cases, "size_after": size_report(settings),
    }
    if profile:
        result["profiles"] = {}
        for case, mutate in _mutations(settings.corpus_dir, n, reps).items():
            if case == "no_change":
                continue
            mutate()
            profiler = cProfile.Profile()
            profiler.enable()
            t0 = time.perf_counter()
            report = update(settings, lambda: embedder, progress=False)
            seconds = time.perf_counter() - t0
            profiler.disable()
            assert report.generation is not None
            result["profiles"][case] = {"seconds": round(seconds, 3),
                                        "top": top_functions(profiler, 15)}
    return result


def top_functions(profiler: cProfile.Profile, n: int) -> list[dict[str, Any]]:
    """The n functions with the largest cumulative time (cProfile, with its overhead)."""
    stats = pstats.Stats(profiler)
    rows = [{"function": f"{Path(file).name}:{line}:{func}" if line else func,
             "calls": calls, "cumulative_s": round(cum, 4), "own_s": round(own, 4)}
            for (file, line, func), (_, calls, own, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
            if func not in {"<module>", "<lambda>"}]
    rows.sort(key=lambda r: -r["cumulative_s"])
    return rows[:n]


# -- cold start ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_ready(index_dir: Path, corpus: Path, timeout: float = 180) -> dict[str, Any]:
    """Start `assistant serve` on a free loopback port; seconds until `GET /api/health` gets an
    HTTP answer (whatever its status), then stop it."""
    port = _free_port()
    cmd = [*assistant_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--index", str(index_dir), "--corpus", str(corpus)]
    url = f"http://127.0.0.1:{port}/api/health"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=child_env(), cwd=Path(__file__).resolve().parent.parent)
    status: int | None = None
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                raise RuntimeError(f"assistant serve exited {proc.returncode}: {err[-800:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:  # an HTTP answer all the same
                status = exc.code
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
                continue
            break
        seconds = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if status is None:
        raise RuntimeError(f"assistant serve did not answer within {timeout:.0f} s")
    return {"seconds": round(seconds, 3), "status": status}


def cold_start(work: Path, reps: int) -> dict[str, Any]:
    """Seed index built by the real CLI (default model), then fresh processes, alternated."""
    index = work / "seed-index"
    shutil.rmtree(index, ignore_errors=True)
    built = run_measured([*assistant_command(), "index", "build", "--corpus", str(SEED_CORPUS),
                          "--index", str(index)], env=child_env(), timeout=1800)
    if built.returncode != 0:
        raise RuntimeError(f"assistant index build failed: {built.stderr[-800:]}")
    question = question_pool(1)[0]
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "import": [sys.executable, "-c", "import assistant"],
        "search": [*assistant_command(), "search", question, "--json", "--index", str(index),
                   "--corpus", str(SEED_CORPUS)],
    }
    runs: dict[str, list[float]] = {name: [] for name in [*commands, "serve"]}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    statuses = []
    for _ in range(reps):
        for name, cmd in commands.items():
            before = children_cpu()
            r = run_measured(cmd, env=child_env())
            cpu[name].append(round(children_cpu() - before, 3))
            if r.returncode != 0:
                raise RuntimeError(f"{name} failed: {r.stderr[-800:]}")
            if name == "search":
                json.loads(r.stdout)  # the whole JSON came out
            runs[name].append(round(r.wall_s, 3))
        before = children_cpu()
        served = serve_ready(index, SEED_CORPUS)
        cpu["serve"].append(round(children_cpu() - before, 3))
        runs["serve"].append(served["seconds"])
        statuses.append(served["status"])
    return {"question": question, "index_build_s": round(built.wall_s, 2),
            "health_status": statuses,
            **{name: {"seconds": values, "median_s": round(statistics.median(values), 3),
                      "cpu_s": cpu[name], "median_cpu_s": round(statistics.median(cpu[name]), 3)}
               for name, values in runs.items()}}


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- report --------------------------------------------------------------------------------------


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "–"
    return "met" if value <= target else "**not met**"


def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1e6:.2f}"


def markdown(d: dict[str, Any]) -> str:
    u = d["update"]
    size, cases = u["size"], u["cases"]
    n = f"{u['articles']:,}".replace(",", " ")
    chunks = f"{size['chunks']:,}".replace(",", " ")
    method = ("bytes written: `write_bytes` of /proc/self/io (what this process sent to the "
              "filesystem, pages dirtied, whatever a later delete cancels)"
              if d["write_bytes_counted"] else
              "bytes written: sizes of the files the update created (/proc/self/io "
              "`write_bytes` counts nothing on this filesystem)")
    targets = {"add": (TARGETS["add_s"], TARGETS["add_share"]),
               "remove": (TARGETS["remove_s"], None), "no_change": (TARGETS["no_change_s"], None),
               "change": (None, None)}
    rows = []
    for case in CASES:
        c = cases[case]
        written = (c["median_write_bytes"] if d["write_bytes_counted"]
                   else c["median_new_file_bytes"])
        share = written / size["bytes"] if written is not None else None
        t_s, t_share = targets[case]
        goal = []
        if t_s is not None:
            goal.append(f"≤ {t_s:g} s: {_verdict(c['median_s'], t_s)}")
        if t_share is not None:
            goal.append(f"≤ {t_share:.0%}: {_verdict(share, t_share)}")
        rows.append([CASE_LABELS[case], f"{c['median_s']:.3f}",
                     " / ".join(f"{s:.2f}" for s in c["seconds"]), _mb(written),
                     "–" if share is None else f"{share:.2%}", _mb(c["median_new_file_bytes"]),
                     _mb(c["median_rchar"]), "; ".join(goal) or "–"])
    parts = ", ".join(f"{k} {v:,.0f}".replace(",", " ")
                      for k, v in size["parts_per_chunk"].items())
    per_chunk = size["extra_bytes_per_chunk"]

    def per_article(key: str) -> str:
        return f"{size[key] / max(size['articles'], 1):.1f}"

    lines = [
        f"### Update cost at scale ({n} synthetic articles of real length, {chunks} chunks, "
        "local stores, hashing embedder)",
        "",
        f"Index of {n} articles from `bench/update_cost.py` (seeded, {per_article('chunks')} "
        f"chunks and {per_article('sentence_vectors')} sentence rows an "
        f"article; FAISS {size['kinds']['chunks']} for chunks, {size['kinds']['sentences']} "
        f"for sentences), embedded by a deterministic hashing embedder (384-d unit vectors from a "
        f"hash of the text: the stores' mechanics, not the model). Full build "
        f"{u['build']['seconds']:.0f} s in one process (informational).",
        "",
        md_table(["index on disk", "MB", "bytes a chunk"], [
            ["everything (one live generation, after the build)", f"{size['bytes'] / 1e6:.1f}",
             round(size["bytes"] / max(size["chunks"], 1))],
            [f"vectors: 4 × {size['dimension']} × ({size['chunk_vectors']:,} chunk + "
             f"{size['sentence_vectors']:,} sentence vectors)".replace(",", " "),
             f"{size['vector_bytes'] / 1e6:.1f}",
             round(size["vector_bytes"] / max(size["chunks"], 1))],
            [f"beyond the vectors (target ≤ 3 KB a chunk: {_verdict(per_chunk, 3072)})",
             f"{size['extra_bytes'] / 1e6:.1f}", round(per_chunk)],
            [f"after the updates below ({u['size_after']['generations']} generations kept)",
             f"{u['size_after']['bytes'] / 1e6:.1f}",
             round(u["size_after"]["bytes"] / max(u["size_after"]["chunks"], 1))],
        ]),
        "",
        "Every file under the index directory counts (file sizes): catalog (SQLite, with its "
        "article texts), dense stores (FAISS ids and structure around the vectors), BM25 "
        f"postings, manifests. Bytes a chunk by part: {parts}.",
        "",
        md_table(["update (in process, embedder loaded)", "median s", "runs s",
                  "MB written", "share of index", "MB in new files", "MB read", "target"], rows),
        "",
        f"Medians of {u['reps']} runs, each case in turn (add a new article file, rewrite the "
        "last paragraph and date of another, delete a third, then nothing). "
        f"{method}; share of the index's {size['bytes'] / 1e6:.0f} MB after the build; "
        "MB read: bytes this process read (`rchar`, page cache included).",
    ]
    for case, profile in u.get("profiles", {}).items():
        if case != "add" and cases[case]["median_s"] <= TARGETS["add_s"]:
            continue  # the add's profile, and any other case slower than the add's target
        lines += ["", f"Where one more update ({CASE_LABELS[case]}) spends its time (cProfile, "
                  f"cumulative, {profile['seconds']:.2f} s with its overhead): "
                  + ", ".join(f"`{r['function']}` {r['cumulative_s']:.2f}"
                              for r in profile["top"]) + "."]
    cold = d.get("cold")
    lines += ["", "### Cold start (seed index, default model, fresh processes)", ""]
    if cold is None:
        lines.append("Not measured in this run (`--no-cold`).")
    else:
        lines += [
            md_table(["what", "median s", "runs s", "CPU s (median)", "target"], [
                [label, cold[key]["median_s"], " / ".join(f"{s:.2f}" for s in cold[key]["seconds"]),
                 cold[key].get("median_cpu_s"),
                 "–" if goal is None else f"≤ {goal:g} s: {_verdict(cold[key]['median_s'], goal)}"]
                for key, label, goal in (
                    ("python", "`python -c pass` (interpreter alone)", None),
                    ("import", "`python -c 'import assistant'`", TARGETS["import_s"]),
                    ("search", "`assistant search \"…\" --json`, to its JSON",
                     TARGETS["search_s"]),
                    ("serve", "`assistant serve`, until `GET /api/health` answers", None))
            ]),
            "",
            f"Wall time of each fresh process (medians of {len(cold['search']['seconds'])}, "
            "alternated) and the CPU time it used (user + system, the measure that other jobs "
            "on the cores do not inflate); the seed index built first with `assistant index "
            f"build` ({cold['index_build_s']:.0f} s).",
        ]
    lines += ["", f"Machine: {describe_machine(d['machine'])}."]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    work = workdir("update_cost", args.out)
    corpus = work / "corpus"
    t0 = time.perf_counter()
    write_articles(corpus, args.articles)
    print(f"{args.articles} articles written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    settings = Settings(corpus_dir=corpus, index_dir=work / "index")
    embedder = HashingEmbedder(settings)
    data: dict[str, Any] = {"machine": info, "write_bytes_counted": write_bytes_counted(work),
                            "embedder": embedder.describe()}
    data["update"] = update_costs(settings, embedder, args.articles, args.reps,
                                  profile=not args.no_profile)
    print(f"update costs measured: {data['update']['size']['chunks']} chunks", file=sys.stderr)
    shutil.rmtree(work / "index", ignore_errors=True)
    shutil.rmtree(corpus, ignore_errors=True)
    data["cold"] = None if args.no_cold else cold_start(work, args.cold_reps)
    write_results("update_cost", data, markdown(data), args.out)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3, help="runs of each update case")
    parser.add_argument("--cold-reps", type=int, default=3, help="runs of each fresh process")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start part")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled update")
    parser.add_argument("--quick", action="store_true", help="1,000 articles, 2 runs each")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not 1 <= args.reps < MAX_REPS or args.articles < 2 * MAX_REPS:
        parser.error(f"--reps: 1 to {MAX_REPS - 1}; --articles: at least {2 * MAX_REPS}")
    if args.quick:
        args.articles, args.reps, args.cold_reps = 1_000, 2, 2
    run(args)
    print((args.out / "update_cost.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
