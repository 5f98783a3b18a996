"""The product's vocabulary against the full one: tokens and vectors of every text it handles.

    python bench/vocabulary.py [--cache-dir DIR] [--out DIR]

multilingual-e5-small is converted with the pieces French and English text can produce
(`assistant.embed.e5.kept_pieces`, ~half of the 250,002). This converts the model both ways
(the full vocabulary in a directory of its own), exports both with the default backend, and
compares, text by text, over: the seed corpus's chunks and sentence rows, the dev articles'
(`../shared/eval/articles`) chunks and sentence rows, the calibration texts, every question file
and a few texts in other scripts:

- token ids (the pruned ids mapped back to the full vocabulary's): identical or not;
- cosine of the two vectors (min, mean), and how many are bit-identical;
- sizes on disk (converted directory, export, compiled model) and tokenizer.json load time.

Identical vectors for every French and English text mean the dev metrics cannot move; the texts
in other scripts show what changes where the vocabulary was cut. Writes bench/out/vocabulary.json
and .md. Exports go to --cache-dir (default: a scratch directory under bench/out/work).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (  # type: ignore[import-not-found]
    OUT,
    QUESTION_FILES,
    ROOT,
    SEED_CORPUS,
    describe_machine,
    machine,
    md_table,
    tree_bytes,
    write_results,
)

from assistant import Settings
from assistant.embed.backends import make_embedder
from assistant.embed.e5 import converted_model_dir
from assistant.evaluation import load_questions
from assistant.ingest.chunking import corpus_indexed_sentences, corpus_indexed_texts

DEV_ARTICLES = ROOT.parent / "shared" / "eval" / "articles"
OTHER_SCRIPTS = [
    "Ärger über Größe, naïveté, São Paulo, 東京", "Emoji 😀 et symboles ™ ① ﬁ ＡＢＣ",
    "Владимир Путин встретился с Эммануэлем Макроном в Москве.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.", "北京是中国的首都，上海是最大的城市。",
    "Łódź, Kraków, Erdoğan, Nguyễn Phú Trọng, Dvořák, Þórsdóttir.",
]


def text_sets(settings: Settings) -> dict[str, list[str]]:
    from importlib.resources import files

    calibration = [json.loads(line)["text"] for line in files("assistant").joinpath(
        "data/calibration.jsonl").read_text("utf-8").splitlines() if line.strip()]
    questions = list(dict.fromkeys(q.question for path in QUESTION_FILES if path.exists()
                                   for q in load_questions(path)))
    sets = {"seed chunks": corpus_indexed_texts(SEED_CORPUS, settings),
            "seed sentences": corpus_indexed_sentences(SEED_CORPUS),
            "calibration": calibration, "questions": questions, "other scripts": OTHER_SCRIPTS}
    if DEV_ARTICLES.is_dir():
        sets["dev article chunks"] = corpus_indexed_texts(DEV_ARTICLES, settings)
        sets["dev article sentences"] = corpus_indexed_sentences(DEV_ARTICLES)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=OUT / "work" / "vocabulary-cache")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from tokenizers import Tokenizer

    cache = args.cache_dir
    dirs = {v: converted_model_dir(cache, vocabulary=v) for v in ("full", "fr-en")}
    tokenizers, embedders, sizes = {}, {}, {}
    for name, directory in dirs.items():
        t0 = time.perf_counter()
        tokenizers[name] = Tokenizer.from_file(str(directory / "tokenizer.json"))
        load_s = time.perf_counter() - t0
        settings = Settings(embedding_model=str(directory), embedding_cache_dir=cache)
        embedders[name] = make_embedder(settings, batch=True)
        export = embedders[name].directory
        sizes[name] = {"vocabulary": tokenizers[name].get_vocab_size(),
                       "converted_mb": tree_bytes(directory) / 1e6,
                       "export_mb": tree_bytes(export) / 1e6,
                       "compiled_mb": tree_bytes(export / "compiled") / 1e6,
                       "tokenizer_json_mb": (directory / "tokenizer.json").stat().st_size / 1e6,
                       "tokenizer_load_s": load_s}
    full_of = np.array([tokenizers["full"].token_to_id(tokenizers["fr-en"].id_to_token(i))
                        for i in range(tokenizers["fr-en"].get_vocab_size())])
    results: dict[str, Any] = {}
    for label, texts in text_sets(Settings()).items():
        prompt = "query: " if label in ("questions", "other scripts") else "passage: "
        full = [e.ids for e in tokenizers["full"].encode_batch([prompt + t for t in texts])]
        ours = [full_of[e.ids].tolist()
                for e in tokenizers["fr-en"].encode_batch([prompt + t for t in texts])]
        vectors = {k: e.embed_passages(texts) if prompt == "passage: " else
                   np.stack([e.embed_query(t) for t in texts]) for k, e in embedders.items()}
        cos = np.sum(vectors["full"] * vectors["fr-en"], axis=1)
        results[label] = {
            "texts": len(texts), "tokens": sum(map(len, full)),
            "same_tokens": sum(a == b for a, b in zip(full, ours)),
            "same_vectors": int(np.sum(np.all(vectors["full"] == vectors["fr-en"], axis=1))),
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}
        print(label, results[label], file=sys.stderr)
    data = {"machine": machine(), "sizes": sizes, "texts": results}
    rows = [[k, r["texts"], r["tokens"], r["same_tokens"], r["same_vectors"],
             f"{r['cosine_min']:.6f}", f"{r['cosine_mean']:.6f}"] for k, r in results.items()]
    size_rows = [[k, s["vocabulary"], s["converted_mb"], s["export_mb"], s["compiled_mb"],
                  s["tokenizer_json_mb"], s["tokenizer_load_s"]] for k, s in sizes.items()]
    md = "\n\n".join([
        "### The product's vocabulary (French/English pieces) against the full one, "
        "openvino-int8",
        f"Machine: {describe_machine(data['machine'])}",
        md_table(["texts", "n", "tokens", "same tokens", "same vectors", "cosine min",
                  "cosine mean"], rows),
        md_table(["vocabulary", "pieces", "converted MB", "export MB", "compiled MB",
                  "tokenizer.json MB", "tokenizer load s"], size_rows),
        "Same tokens: the ids of the two tokenizers name the same pieces; same vectors: "
        "bit for bit. Every French and English text keeps its tokens and its vector, so no "
        "retrieval or answer metric can move; the texts in other scripts are cut into shorter "
        "pieces."])
    print(write_results("vocabulary", data, md, args.out).read_text())


if __name__ == "__main__":
    main()
