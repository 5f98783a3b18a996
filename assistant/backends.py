"""Embedding backends behind the one `Embedder` interface, and `make_embedder(settings)`.

    torch          sentence-transformers itself (`embeddings.SentenceTransformerEmbedder`)
    onnx           ONNX Runtime, fp32 export           } exported once, offline, from the local
    onnx-int8      ONNX Runtime, dynamic int8 export   } model directory into the model cache
    openvino       OpenVINO, fp32 IR                   } (`model_export.py`), reused at every
    openvino-int8  OpenVINO, static int8 (NNCF)        } start after that

Every backend returns what sentence-transformers returns for the model (mean pooling, L2
normalisation, `max_seq_length` truncation, the model's own tokenizer); the index manifest records
the backend, so vectors of two backends never share an index (see `embeddings.embedding_identity`).

Threads (`embedding_threads`): 0 = automatic, i.e. all cores for index builds (`batch=True`) and
one intra-op thread per request when serving, so concurrent questions do not fight over cores.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .embeddings import Embedder, SentenceTransformerEmbedder, embedding_identity
from .errors import ConfigError
from .model_export import REQUIREMENTS, ensure_export, missing_package

log = logging.getLogger(__name__)

PAD_MULTIPLE = 16  # token lengths are padded to a multiple of this: few shapes to compile
WARM_TOKENS = 64  # a serving embedder compiles the shapes of questions up to this length


def make_embedder(settings: Settings, *, batch: bool = False) -> Embedder:
    """The embedder `settings.embedding_backend` names (exported on first use if needed).

    `batch=True` for index builds: with `embedding_threads=0` it uses every core; otherwise one
    thread per call, the right choice for a server answering several questions at once.
    """
    backend = settings.embedding_backend
    if backend == "torch":
        return SentenceTransformerEmbedder(settings)
    if backend.startswith("onnx"):
        return OnnxEmbedder(settings, batch=batch)
    return OpenVinoEmbedder(settings, batch=batch)


def load_tokenizer(directory: Path, max_length: int) -> Any:
    """The export's `tokenizers` tokenizer (no transformers, no torch: a fast start), truncating
    to `max_length` and padding batches to a multiple of `PAD_MULTIPLE` tokens (few shapes)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    pad = config.get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad or "[PAD]",
                             pad_to_multiple_of=PAD_MULTIPLE)
    return tokenizer


def resolve_threads(settings: Settings, *, batch: bool) -> int:
    """Intra-op threads for one call: the setting, else all usable cores (builds) or 1 (serving)."""
    if settings.embedding_threads > 0:
        return settings.embedding_threads
    if not batch:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class ExportedEmbedder:
    """Shared part of the exported backends: tokenization, length-sorted batches, prompts.

    Subclasses load `directory / meta["file"]` in `_load` and run one batch in `_run`.
    """

    family = ""

    def __init__(self, settings: Settings, *, batch: bool = False) -> None:
        if not settings.embedding_backend.startswith(self.family):
            raise ValueError(f"{type(self).__name__} cannot run {settings.embedding_backend}")
        self.backend = settings.embedding_backend
        self._identity = embedding_identity(settings)
        self.query_prompt: str = self._identity["query_prompt"]
        self.passage_prompt: str = self._identity["passage_prompt"]
        self.model_id = settings.embedding_model
        self.batch_size = max(1, settings.embedding_batch_size)
        self.threads = resolve_threads(settings, batch=batch)
        self.directory, self.meta = ensure_export(settings)
        self.dimension = int(self.meta["dimension"])
        self.max_length = int(self.meta["max_length"])
        self._inputs: list[str] = list(self.meta["inputs"])
        self._tokenizer = load_tokenizer(self.directory / "tokenizer", self.max_length)
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not re-entrant
        try:
            self._load(self.directory / str(self.meta["file"]))
            if not batch:
                self.warm_up()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"Modèle exporté illisible ({self.directory} : {exc.__class__.__name__}: {exc}). "
                "Supprimez ce dossier : l'export sera refait au prochain démarrage."
            ) from None

    # -- what subclasses provide ----------------------------------------------------------------
    def _load(self, path: Path) -> None:
        raise NotImplementedError

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def runtime(self) -> dict[str, Any]:
        return {}

    # -- the Embedder interface -----------------------------------------------------------------
    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one row per text, in the order given."""
        return self._encode([self.passage_prompt + t for t in texts], progress=progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prompt + text])[0]

    def describe(self) -> dict[str, Any]:
        return {
            **self._identity, "dimension": self.dimension, "threads": self.threads,
            "export": str(self.directory), "export_version": self.meta.get("export_version"),
            **self.runtime(),
        }

    # -- internals ------------------------------------------------------------------------------
    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")  # little padding per batch
        starts = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Vectorisation", unit="lot")
        for start in starts:
            rows = order[start:start + self.batch_size]
            out[rows] = self._run(self._tokenize([texts[i] for i in rows]))
        return out

    def _tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        with self._tokenizer_lock:
            encodings = self._tokenizer.encode_batch(texts)
        columns = {"input_ids": [e.ids for e in encodings],
                   "attention_mask": [e.attention_mask for e in encodings],
                   "token_type_ids": [e.type_ids for e in encodings]}
        return {k: np.asarray(columns[k], dtype=np.int64) for k in self._inputs}

    def warm_up(self) -> None:
        """Run one question of each padded length up to `WARM_TOKENS` tokens: the runtime sets
        up its kernels per input shape (measured: 10-45 ms the first time a length is seen,
        4-6 ms after), so a serving process pays that at load, not on its first questions."""
        for n in range(PAD_MULTIPLE, WARM_TOKENS + 1, PAD_MULTIPLE):
            self._run(self._tokenize([" ".join(["mot"] * (n - 4))]))


class OnnxEmbedder(ExportedEmbedder):
    """ONNX Runtime on CPU: `onnx` (fp32) or `onnx-int8` (dynamic int8 MatMuls, VNNI)."""

    family = "onnx"

    def _load(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_package(self.backend, exc) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._version = ort.__version__
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        # InferenceSession.run is thread-safe: concurrent questions share one session.
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)

    def runtime(self) -> dict[str, Any]:
        return {"runtime": f"onnxruntime {self._version}"}


class OpenVinoEmbedder(ExportedEmbedder):
    """OpenVINO on CPU: `openvino` (fp32 IR) or `openvino-int8` (NNCF static int8).

    Runs with `INFERENCE_PRECISION_HINT=f32`: on CPUs with AMX/AVX512-BF16 OpenVINO would
    otherwise compute in bf16, and the vectors of one backend name would depend on the CPU.
    """

    family = "openvino"

    def _load(self, path: Path) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise missing_package(self.backend, exc) from None
        self._version = ov.get_version()
        config = {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        self._compiled = ov.Core().compile_model(str(path), "CPU", config)
        self._request = self._compiled.create_infer_request()
        # One inference at a time: a server under 20 concurrent clients (bench/load.py) was
        # seen stuck for good with two threads inside infer() (one request per thread, dynamic
        # shapes). Not reproduced on demand; a question costs ~3 ms, so serialising is cheap.
        self._infer_lock = threading.Lock()

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        with self._infer_lock:
            result = self._request.infer(feed)
            return np.array(result[self._compiled.output(0)], dtype=np.float32)

    def runtime(self) -> dict[str, Any]:
        return {"runtime": f"openvino {self._version}"}


__all__ = [
    "REQUIREMENTS", "ExportedEmbedder", "OnnxEmbedder", "OpenVinoEmbedder", "make_embedder",
    "resolve_threads",
]
