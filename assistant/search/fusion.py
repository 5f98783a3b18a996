"""The fitted fusion: how the signals of a candidate chunk add up to its search score.

`HybridRetriever.candidate_signals` gives each candidate chunk the `FUSION_FEATURES` below (the
first three legs' signals min-max normalised over the candidates, as in the module docstring of
`retriever.py`). Hand-set weights used to add them up; this is a conditional logit fitted by
`bench/fit_fusion.py` on questions we wrote ourselves (`bench/data/`, never the evaluation
files): per question, a softmax over its candidates should put its weight on the chunks that
hold the answer. It is shipped per embedding model in `assistant/data/fusion.json` (cosines of
two models are not on one scale) and used with `fusion="fitted"` (`ASSISTANT_FUSION`); the
default, a model without a fit, and settings that turn the vector signals off keep the weights
of the settings (`dense_weight`, `sentence_weight`). Not the default: out of fold on our own
questions it puts the right passage first more often (hit@1 0.817 -> 0.835), but on the
evaluation files, held out, it did not (docs/benchmarks.md, "The fitted fusion").

    lexical         BM25 score of the chunk (title included)
    lexical_reach   ... times the question's lexical reach (the share of its ordinary words
                    that some chunk holds: low for a paraphrase or an English question)
    dense           cosine of the chunk's vector with the question's
    dense_reach     ... times the reach
    sentence        best sentence of the chunk: its cosine plus `FACT_BONUS` when it holds
                    the kind of fact asked
    sentence_reach  ... times the reach
    passage         what tells the chunk apart from the other chunks of its article
    unnamed         share of the question's names its article never mentions (not normalised)
    cosine          best sentence cosine alone
    fact            best fact score of its sentences (`sentences.fact_score`, not normalised)
    opening         the chunk is its article's first (title and lead: about everything in it)

The score of a passage is the softmax of the linear scores over the candidates: the fusion's
probability that this chunk is the one holding the answer (between 0 and 1, summing to 1 over
the candidates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..linear import Logistic

FUSION_FEATURES = ("lexical", "lexical_reach", "dense", "dense_reach", "sentence",
                   "sentence_reach", "passage", "unnamed", "cosine", "fact", "opening")


@dataclass(frozen=True)
class Fusion:
    """The conditional logit over the candidates' signals (`linear.Logistic`)."""

    model: Logistic

    @property
    def features(self) -> tuple[str, ...]:
        return self.model.features

    def scores(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        """Per candidate, the softmax over the candidates of the linear scores."""
        z = self.model.scores(signals)
        p = np.exp(z - z.max())
        return np.asarray(p / p.sum())

    def to_dict(self) -> dict[str, Any]:
        return self.model.to_dict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fusion:
        return cls(Logistic.from_dict(data))

    @classmethod
    def fit(cls, questions: list[tuple[np.ndarray, np.ndarray]],
            features: tuple[str, ...] = FUSION_FEATURES, l2: float = 1.0) -> Fusion:
        """Fitted on (signals of a question's candidates, one row each, in `features` order;
        which of them hold the answer)."""
        return cls(Logistic.fit(questions, features, l2=l2))


@lru_cache(maxsize=8)
def fitted_fusion(embedding_model: str) -> Fusion | None:
    """The shipped fusion for `embedding_model`, None for a model without one."""
    text = resources.files("assistant").joinpath("data", "fusion.json").read_text("utf-8")
    fit = json.loads(text)["models"].get(embedding_model)
    return None if fit is None else Fusion.from_dict(fit)
