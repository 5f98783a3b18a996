"""The conditional logit, fitted: the one solver of the linear heads of the pick
(`answer/pairs.Logistic`) and of the search fusion (`search/fusion.Fusion`).

Each question comes with its candidates' rows of features and which candidates are right; the
softmax of the linear scores over a question's candidates should put its weight on the right
ones (only differences within a question count, so there is no bias). Features are
standardised first; L2 penalty; L-BFGS (scipy, imported only to fit: the shipped models are
plain numbers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
