"""Embedding backends behind the one `Embedder` interface, and `make_embedder(settings)`.

    torch          sentence-transformers itself (`embeddings.SentenceTransformerEmbedder`)
    onnx           ONNX Runtime, fp32 export           } exported once, offline, from the local
    onnx-int8      ONNX Runtime, dynamic int8 export   } model directory into the model cache
    openvino       OpenVINO, fp32 IR                   } (`export.py`), reused at every
    openvino-int8  OpenVINO, static int8 (NNCF)        } start after that

Every backend returns what sentence-transformers returns for the model (mean pooling, L2
normalisation, `max_seq_length` truncation, the model's own tokenizer); the index manifest records
the backend, so vectors of two backends never share an index (see `embeddings.embedding_identity`).

Threads (`embedding_threads`): 0 = automatic, i.e. all cores for index builds (`batch=True`) and
one intra-op thread per request when serving, so concurrent questions do not fight over cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from .base import Embedder, SentenceTransformerEmbedder, embedding_identity
from .export import REQUIREMENTS, ensure_export, missing_package

log = logging.getLogger(__name__)

PAD_MULTIPLE = 16  # token lengths are padded to a multiple of this: few shapes to compile
WARM_TOKENS = 64  # a serving embedder compiles the shapes of questions up to this length
#: The padded length warmed first, during the load: a typical question's (the dev questions,
#: prompt and <s> </s> included: 17-32 tokens for multilingual-e5-small, 27 on average).
FIRST_WARM = 2 * PAD_MULTIPLE
COMPILED_CACHE = "compiled"  # compiled OpenVINO models, inside the export (`compile_cached`)
#: A serving OpenVINO model keeps the kernels of this many input shapes (OpenVINO's default,
#: 5,000, let a server grow by 3-8 MB at each new batch shape of an update: `bench/soak.py`)...
SERVING_SHAPES = 16
#: ...and oneDNN, process-wide, this many primitives (default 1,024), unless the environment
#: says otherwise. Both are least-recently-used caches: a question length met again after a
#: burst of other shapes pays its kernels again once (~30 ms), memory stays flat. With 256
#: primitives a server indexing an article now and then still grew for tens of updates (new
#: shapes, new primitives: +25 MB in use over 24 seed updates, 11 shapes); 64 stops that at the
#: same question latency (16 doubled it: 11 -> 22 ms a question). `bench/soak.py`.
ONEDNN_PRIMITIVES = "64"
#: A build embedder's batch on each of its streams (OpenVINO): 298 chunks of the corpus and the
#: dev articles (126 tokens on average), 2 streams of one thread, 2 cores: 32 texts a batch
#: 83 chunks/s, 16 86, 8 90; the int8 matrix products then run near the cores' peak.
STREAM_BATCH = 8


def make_embedder(settings: Settings, *, batch: bool = False,
                  one_shot: bool = False) -> Embedder:
    """The embedder `settings.embedding_backend` names (exported on first use if needed).

    `batch=True` for index builds: with `embedding_threads=0` it uses every core; otherwise one
    thread per call, the right choice for a server answering several questions at once.
    `one_shot=True` for a process that embeds one question and exits (`assistant ask`): no
    background warm-up of other question lengths (`ExportedEmbedder.warm_up`).
    """
    backend = settings.embedding_backend
    if backend == "torch":
        return SentenceTransformerEmbedder(settings)
    if backend.startswith("onnx"):
        return OnnxEmbedder(settings, batch=batch, one_shot=one_shot)
    return OpenVinoEmbedder(settings, batch=batch, one_shot=one_shot)


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


_TOKENIZERS: dict[tuple[Path, int], tuple[Any, threading.Lock]] = {}
_TOKENIZERS_LOCK = threading.Lock()


def shared_tokenizer(directory: Path, max_length: int) -> tuple[Any, threading.Lock]:
    """(`load_tokenizer(directory, max_length)`, the lock every call to it takes: a fast
    tokenizer is not re-entrant), one per process: multilingual-e5-small's holds ~100 MB, and a
    server has a serving embedder, a build embedder and the reader."""
    key = (Path(directory).resolve(), max_length)
    with _TOKENIZERS_LOCK:
        if key not in _TOKENIZERS:
            _TOKENIZERS[key] = (load_tokenizer(directory, max_length), threading.Lock())
        return _TOKENIZERS[key]


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

    def __init__(self, settings: Settings, *, batch: bool = False,
                 one_shot: bool = False) -> None:
        if not settings.embedding_backend.startswith(self.family):
            raise ValueError(f"{type(self).__name__} cannot run {settings.embedding_backend}")
        self.backend = settings.embedding_backend
        self._identity = embedding_identity(settings)
        self.query_prompt: str = self._identity["query_prompt"]
        self.passage_prompt: str = self._identity["passage_prompt"]
        self.model_id = settings.embedding_model
        self.batch_size = max(1, settings.embedding_batch_size)
        self.threads = resolve_threads(settings, batch=batch)
        self.serving = not batch  # a long-lived process: bounded caches (`SERVING_SHAPES`)
        self.directory, self.meta = ensure_export(settings)
        self.dimension = int(self.meta["dimension"])
        self.max_length = int(self.meta["max_length"])
        self._inputs: list[str] = list(self.meta["inputs"])
        self._in_use = threading.Event()  # set by the first real call: warm-up stops
        # Reading the tokenizer (~0.25 s in Rust) holds the GIL; importing the compiled model and
        # the first inference (~0.3 s) release it: they run in a thread (after the runtime's
        # Python import, which needs the GIL) while the tokenizer is read here, so a cold
        # `assistant ask` waits for the longer of the two, not their sum. A one-shot process
        # does not even wait for the model here: its first call does (`_model_ready`), and
        # what it does meanwhile (opening the index, importing the answerer) overlaps too.
        self._load_error: BaseException | None = None
        self._loader: threading.Thread | None = None
        try:
            self._import_runtime()
        except ConfigError:
            raise
        except Exception as exc:
            raise self._unreadable(exc) from None
        self._loader = threading.Thread(target=self._load_model, name="model-load")
        self._loader.start()
        try:
            self._tokenizer, self._tokenizer_lock = shared_tokenizer(
                self.directory / "tokenizer", self.max_length)
        except Exception as exc:
            self._loader.join()
            raise self._unreadable(exc) from None
        if not one_shot:  # a server fails at start, not at its first question
            self._model_ready()
            if self.serving:
                self.warm_up()

    def _load_model(self) -> None:
        """The model, then (serving) one inference at a typical question's length: the
        process's first inference (~100 ms) is paid here, not by the first question."""
        try:
            self._load(self.directory / str(self.meta["file"]))
            if self.serving:
                self._warm(FIRST_WARM)
        except BaseException as exc:  # raised by `_model_ready`, in the caller's thread
            self._load_error = exc

    def _model_ready(self) -> None:
        """Wait for the model thread (at once after the first time); its failure is raised
        here, as a ConfigError, at every call."""
        if self._loader is not None:
            self._loader.join()  # at once when done
        error = self._load_error
        if error is not None:  # every call says it: the embedder is unusable
            raise error if isinstance(error, ConfigError) else self._unreadable(error)

    def _unreadable(self, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"Modèle exporté illisible ({self.directory} : {exc.__class__.__name__}: {exc}). "
            "Supprimez ce dossier : l'export sera refait au prochain démarrage.")

    # -- what subclasses provide ----------------------------------------------------------------
    def _import_runtime(self) -> None:
        """Import the runtime's Python package (the GIL-bound part of a load)."""

    def _load(self, path: Path) -> None:
        raise NotImplementedError

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def runtime(self) -> dict[str, Any]:
        return {}

    # -- the Embedder interface -----------------------------------------------------------------
    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one row per text, in the order given."""
        self._model_ready()
        return self._encode([self.passage_prompt + t for t in texts], progress=progress)

    def embed_query(self, text: str) -> np.ndarray:
        self._model_ready()
        self._in_use.set()
        return self._run(self._tokenize([self.query_prompt + text]))[0]

    def describe(self) -> dict[str, Any]:
        self._model_ready()
        return {
            **self._identity, "dimension": self.dimension, "threads": self.threads,
            "export": str(self.directory), "export_version": self.meta.get("export_version"),
            **self.runtime(),
        }

    # -- internals ------------------------------------------------------------------------------
    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self._in_use.set()
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
        4-6 ms after), so a serving process pays that at load, not on its first questions.

        A typical question's length (`FIRST_WARM`) ran during the load (the process's first
        inference, ~100 ms, that the first question would pay, while the tokenizer was read;
        a broken model fails at load); the others run here, in a background thread that stops
        at the first real call. A one-question process (`one_shot`: `assistant ask`) skips
        them: they would only delay its question and its exit.
        """
        # Not a daemon: killed inside OpenVINO at exit, a daemon thread aborts the process
        # ("terminate called without an active exception", seen); at worst exit waits for it.
        self._warming = threading.Thread(target=self._warm_rest, name="embedder-warm-up")
        self._warming.start()

    def _warm(self, tokens: int) -> None:
        """One inference of a `tokens`-long input (its values do not matter: kernels are set up
        per shape), so it needs no tokenizer."""
        ones = np.ones((1, tokens), dtype=np.int64)
        self._run({k: ones if k == "attention_mask" else 0 * ones for k in self._inputs})

    def _warm_rest(self) -> None:
        for n in range(PAD_MULTIPLE, WARM_TOKENS + 1, PAD_MULTIPLE):
            if n == FIRST_WARM:
                continue
            if self._in_use.is_set():
                return
            try:
                self._warm(n)
            except Exception as exc:  # the question that meets the same fault reports it
                log.debug("Préchauffage interrompu : %s", exc)
                return


class OnnxEmbedder(ExportedEmbedder):
    """ONNX Runtime on CPU: `onnx` (fp32) or `onnx-int8` (dynamic int8 MatMuls, VNNI)."""

    family = "onnx"

    def _import_runtime(self) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise missing_package(self.backend, exc) from None

    def _load(self, path: Path) -> None:
        import onnxruntime as ort

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

    A build embedder (`batch=True`) with several threads runs one stream per thread: one batch
    per core at a time (`_encode`), instead of every core on one batch, which waits at every
    layer for the slowest core (seed chunks, batches of 32, 2 shared cores: ~1.5x the chunks/s).
    """

    family = "openvino"

    def _import_runtime(self) -> None:
        if self.serving:
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_PRIMITIVES)
        try:
            import_openvino()
        except ImportError as exc:
            raise missing_package(self.backend, exc) from None

    def _load(self, path: Path) -> None:
        import openvino as ov

        self._version = ov.get_version()
        self._words: tuple[np.ndarray, np.ndarray] | None = None
        words = self.meta.get("word_embeddings")
        if words:  # int8 rows and their scales, memory-mapped: a question reads its rows only
            self._words = (np.load(self.directory / words["table"], mmap_mode="r"),
                           np.load(self.directory / words["scales"], mmap_mode="r"))
            self._words_input = str(words["input"])
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": self.threads,
                                  "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if self.serving:
            config["CPU_RUNTIME_CACHE_CAPACITY"] = SERVING_SHAPES
        self._streams = 1 if self.serving else self.threads
        if self._streams > 1:
            config["NUM_STREAMS"] = self._streams  # applied at import, like the threads
        self._compiled, mapped, self._compiled_from = compile_cached(ov.Core(), path, config)
        #: What the graph takes (the e5 export reads the word rows, not the ids).
        self._graph_inputs = {n for port in self._compiled.inputs for n in port.get_names()}
        self._request = self._compiled.create_infer_request()
        self._mapped = mapped  # the imported model's weights: set last, so released last
        # One inference at a time: a server under 20 concurrent clients (bench/load.py) was
        # seen stuck for good with two threads inside infer() (one request per thread, dynamic
        # shapes). Not reproduced on demand; a question costs ~3 ms, so serialising is cheap.
        self._infer_lock = threading.Lock()

    def _feed(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._words is None:
            return feed
        table, scales = self._words
        return {**{k: v for k, v in feed.items() if k in self._graph_inputs},
                self._words_input: looked_up(table, scales, feed["input_ids"])}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        feed = self._feed(feed)
        with self._infer_lock:
            result = self._request.infer(feed)
            return np.array(result[self._compiled.output(0)], dtype=np.float32)

    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """With several streams: the batches in flight on every stream at once, the next one
        tokenized meanwhile; vectors identical to one batch after the other. Batches of at most
        `STREAM_BATCH` texts, and at least one per stream: every stream keeps working to the
        end (a new article's ~35 texts were a batch of 32 and one of 3)."""
        if self._streams == 1 or len(texts) <= 1:
            return super()._encode(texts, progress=progress)
        size = min(self.batch_size, STREAM_BATCH, -(-len(texts) // self._streams))
        import openvino as ov

        self._in_use.set()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Vectorisation", unit="lot")

        failed: list[BaseException] = []

        def done(request: Any, rows: np.ndarray) -> None:  # in OpenVINO's thread
            try:
                out[rows] = request.get_output_tensor(0).data
            except BaseException as exc:  # raised below, not lost in that thread
                failed.append(exc)

        with self._infer_lock:
            queue = ov.AsyncInferQueue(self._compiled, self._streams)
            queue.set_callback(done)
            for start in starts:
                rows = order[start:start + size]
                queue.start_async(self._feed(self._tokenize([texts[i] for i in rows])), rows)
            queue.wait_all()
        if failed:
            raise failed[0]
        return out

    def runtime(self) -> dict[str, Any]:
        return {"runtime": f"openvino {self._version}", "compiled": self._compiled_from}


def looked_up(table: np.ndarray, scales: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The float32 word rows of token `ids` from an int8 table and its per-row scales: what
    the graph's lookup did before the table was cut out of it (`e5_export.int8_word_table`)."""
    return np.multiply(table[ids], scales[ids], dtype=np.float32)


def import_openvino() -> Any:
    """`import openvino` without its model converter: `openvino/__init__.py` imports
    `openvino.tools.ovc` (~0.1 s, and a telemetry call) when it can, and goes on without it when
    that import fails. Running a model never needs the converter; an export imports it itself
    (`from openvino.tools.ovc import convert_model`), which works afterwards."""
    import sys

    if "openvino" in sys.modules or "openvino.tools.ovc" in sys.modules:
        import openvino as ov

        return ov
    sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        import openvino as ov
    finally:
        if sys.modules.get("openvino.tools.ovc", 0) is None:
            del sys.modules["openvino.tools.ovc"]
    return ov


def compile_cached(core: Any, path: Path, config: dict[str, Any]) -> tuple[Any, Any, str]:
    """(the model at `path` compiled for this CPU, the memory map it lives in when imported,
    where it came from): imported from `compiled/` beside it when there, else compiled and saved
    there.

    Compiling unpacks the int8 word-embedding table to float32 (measured for
    multilingual-e5-small: ~1 s, ~940 MB peak); importing the saved result, memory-mapped,
    takes ~0.2 s and ~500 MB: most of a fresh `assistant search`. The file (~400 MB) is named
    by what it depends on (`compiled_name`), written once and published atomically, so
    concurrent processes only ever read complete files; an unreadable one is compiled again
    and replaced; an export that cannot be written to is compiled at every start.
    """
    blob = path.parent / COMPILED_CACHE / compiled_name(core, config)
    if blob.is_file():
        try:
            import openvino as ov

            mapped = np.memmap(blob, dtype=np.uint8, mode="c")  # pages shared, never written
            compiled = core.import_model(ov.Tensor(mapped, shared_memory=True), "CPU", config)
            return compiled, mapped, f"{COMPILED_CACHE}/{blob.name}"
        except Exception as exc:  # truncated by a full disk, another OpenVINO build...
            log.warning("Modèle compilé illisible (%s : %s) : compilation.", blob, exc)
    compiled = core.compile_model(str(path), "CPU", config)
    _save_compiled(compiled, blob)
    return compiled, None, path.name


def compiled_name(core: Any, config: dict[str, Any]) -> str:
    """File name of a compiled model: a digest of the OpenVINO build, the CPU and the compile
    options (threads, streams and the shape cache are applied at import, so builds and servers
    share one file)."""
    import openvino as ov

    facts = {
        "openvino": ov.get_version(),
        "cpu": [str(core.get_property("CPU", key)) for key in
                ("FULL_DEVICE_NAME", "DEVICE_ARCHITECTURE", "OPTIMIZATION_CAPABILITIES")],
        "options": {k: str(v) for k, v in sorted(config.items()) if k not in
                    ("INFERENCE_NUM_THREADS", "CPU_RUNTIME_CACHE_CAPACITY", "NUM_STREAMS")},
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{digest}.blob"


def _save_compiled(compiled: Any, blob: Path) -> None:
    """Write `compiled` to `blob` through a temporary file renamed into place (never a partial
    file under the final name); a failure only costs the next start its compilation."""
    tmp: Path | None = None
    try:
        blob.parent.mkdir(exist_ok=True)
        for stale in blob.parent.glob(".*.tmp"):  # left by killed processes
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > 3600:
                    stale.unlink()
        fd, name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=blob.parent)
        tmp = Path(name)
        stream = compiled.export_model()
        with os.fdopen(fd, "wb") as f:
            f.write(stream.getbuffer() if hasattr(stream, "getbuffer") else stream)
        os.replace(tmp, blob)
        tmp = None
    except Exception as exc:  # a full disk, a read-only export...: the model works anyway
        log.info("Modèle compilé non enregistré (%s : %s).", blob.parent, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


__all__ = [
    "REQUIREMENTS", "ExportedEmbedder", "OnnxEmbedder", "OpenVinoEmbedder", "make_embedder",
    "resolve_threads",
]
