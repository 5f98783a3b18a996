"""The conditional logit: the one linear model (`Logistic`) and solver of the answer's pick head
(`answer/pairs.py`) and of the search fusion (`search/fusion.py`).

Each question comes with its candidates' rows of features and which candidates are right; the
softmax of the linear scores over a question's candidates should put its weight on the right
ones (only differences within a question count, so there is no bias). Features are
standardised first; L2 penalty; L-BFGS (scipy, imported only to fit: the shipped models are
plain numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Logistic:
    """A linear model over standardised features, fitted as a conditional logit."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float = 0.0

    def linear(self, features: dict[str, float]) -> float:
        """The score of one row given as a dict (a missing feature counts 0)."""
        return self.bias + sum(w * (features.get(name, 0.0) - m) / s for name, m, s, w in
                               zip(self.features, self.mean, self.scale, self.weights))

    def scores(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The scores of many rows given as one array per feature."""
        x = np.column_stack([columns[name] for name in self.features])
        return np.asarray(self.bias + ((x - np.asarray(self.mean)) / np.asarray(self.scale))
                          @ np.asarray(self.weights))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "linear", "features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        return cls(tuple(data["features"]), tuple(map(float, data["mean"])),
                   tuple(map(float, data["scale"])), tuple(map(float, data["weights"])),
                   float(data.get("bias", 0.0)))

    @classmethod
    def fit(cls, questions: Sequence[tuple[np.ndarray, np.ndarray]],
            features: Sequence[str], *, l2: float = 1.0) -> Logistic:
        """Fitted on (a question's candidates, one row each in `features` order; which of them
        are right): `conditional_logit`."""
        mean, scale, w = conditional_logit(questions, l2=l2)
        return cls(tuple(features), tuple(mean.round(6)), tuple(scale.round(6)),
                   tuple(w.round(6)), 0.0)

    @classmethod
    def fit_conditional(cls, questions: Sequence[tuple[Sequence[dict[str, float]],
                                                       Sequence[bool]]],
                        features: Sequence[str], *, l2: float = 1.0) -> Logistic:
        """`fit` on rows given as dicts (a missing feature counts 0)."""
        return cls.fit([(np.array([[r.get(f, 0.0) for f in features] for r in rows],
                                  dtype=np.float64), np.asarray(right, dtype=np.float64))
                        for rows, right in questions], features, l2=l2)


def conditional_logit(questions: Sequence[tuple[np.ndarray, np.ndarray]], *, l2: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, weights) fitted on `questions`, each (rows of features, which are right);
    a question without any right candidate teaches nothing and is left out."""
    from scipy.optimize import minimize

    data = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
            for x, y in questions]
    data = [(x, y / y.sum()) for x, y in data if y.any()]
    stacked = np.vstack([x for x, _ in data])
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-9
    xs = (stacked - mean) / scale
    ys = np.concatenate([y for _, y in data])
    owner = np.repeat(np.arange(len(data)), [len(x) for x, _ in data])
    n = len(data)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = xs @ w
        top = np.full(n, -np.inf)
        np.maximum.at(top, owner, s)
        e = np.exp(s - top[owner])
        total = np.zeros(n)
        np.add.at(total, owner, e)
        log_norm = np.log(total) + top
        value = -(ys * (s - log_norm[owner])).sum() + 0.5 * l2 * w @ w
        grad = xs.T @ (e / total[owner] - ys) + l2 * w
        return value / n, grad / n

    w = minimize(loss, np.zeros(xs.shape[1]), jac=True, method="L-BFGS-B").x
    return mean, scale, w
