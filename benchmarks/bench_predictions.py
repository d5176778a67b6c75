"""Out-of-sample predictions from one fit vs. scikit-learn's refits, side by side.

On a logistic problem (``make_classification``, ``--rows`` x ``--cols``), times

* ``approx_cross_val_predict("predict_proba")`` with 1 and ``--steps`` Newton
  steps per fold (scikit-learn's 5 stratified folds), against
  ``sklearn.model_selection.cross_val_predict(cv=5, method="predict_proba")``
  with ``solver="newton-cholesky"`` (5 refits), and
* ``loo_predict_proba()`` (every row) against refits without ``--loo`` rows,

reporting medians of ``--repeats`` interleaved runs, their ratio, and the
errors against the refits (max and mean absolute probability difference).

Run: ``python benchmarks/bench_predictions.py [--rows 50000] [--cols 200]``
"""

import argparse
import time

import numpy as np
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--loo", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X, y = make_classification(args.rows, args.cols, n_informative=args.cols // 4,
                               flip_y=0.05, random_state=0)
    X = StandardScaler().fit_transform(X)
    est = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=100)
    t_fit, clf = timed(lambda: clone(est).fit(X, y))
    clf.self_influence()  # the factorisation every later query shares
    runs = {"sklearn cross_val_predict(cv=5)": [], "approx, 1 step": [],
            f"approx, {args.steps} steps": []}
    outs = {}
    for _ in range(args.repeats):  # interleaved
        for name, fn in (
            ("sklearn cross_val_predict(cv=5)",
             lambda: cross_val_predict(clone(est), X, y, cv=5, method="predict_proba")),
            ("approx, 1 step", lambda: clf.approx_cross_val_predict("predict_proba")),
            (f"approx, {args.steps} steps",
             lambda: clf.approx_cross_val_predict("predict_proba", newton_steps=args.steps)),
        ):
            t, outs[name] = timed(fn)
            runs[name].append(t)
    exact = outs["sklearn cross_val_predict(cv=5)"]
    base = np.median(runs["sklearn cross_val_predict(cv=5)"])
    print(f"{args.rows} x {args.cols} logistic (fit {t_fit:.2f} s); medians of "
          f"{args.repeats} interleaved runs")
    print(f"{'5-fold predictions':34s} {'seconds':>8s} {'ratio':>7s} {'max err':>9s} "
          f"{'mean err':>9s}")
    for name, times in runs.items():
        err = np.abs(outs[name] - exact)
        print(f"{name:34s} {np.median(times):8.2f} {np.median(times) / base:7.3f} "
              f"{err.max():9.1e} {err.mean():9.1e}")

    rng = np.random.default_rng(0)
    rows = rng.choice(args.rows, args.loo, replace=False)
    t_loo, loo = timed(clf.loo_predict_proba)
    t_ref, refits = timed(lambda: np.array([
        clone(est).fit(np.delete(X, i, 0), np.delete(y, i)).predict_proba(X[i:i + 1])[0]
        for i in rows]))
    err = np.abs(loo[rows] - refits)
    per_refit = t_ref / args.loo
    print(f"\nleave-one-out: all {args.rows} rows in {t_loo:.2f} s; one refit takes "
          f"{per_refit:.2f} s ({args.rows} refits: ~{per_refit * args.rows / 3600:.1f} h); "
          f"error on {args.loo} random rows: max {err.max():.1e}, mean {err.mean():.1e}")


if __name__ == "__main__":
    main()
