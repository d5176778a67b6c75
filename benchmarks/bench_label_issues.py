"""Finding flipped labels: one fit vs. cleanlab's five refits, side by side.

Protocol (Koh & Liang §5.4; cleanlab's benchmark): flip 10% of the training
labels at random (to another class), fit L2 logistic regression
(``newton-cholesky``, standardised features), rank the rows for checking, and
report the fraction of the flips found when 5%, 10% and 20% of the rows are
checked, averaged over ``--seeds`` seeds. Rankings:

* ``self_influence``: most negative ``I_up,loss(z_i, z_i)`` first (the paper);
* ``train_loss``: largest training loss first;
* ``skinfluence``: :func:`skinfluence.find_label_issues` -- out-of-sample
  self-confidence from approximate 5-fold cross-validation (``--newton-steps``
  per fold, default 2, scikit-learn's folds), from the one fit;
* ``cleanlab``: cleanlab's self-confidence label-quality score on
  ``cross_val_predict(cv=5)`` probabilities (5 refits), as cleanlab recommends.

Also the number of fits and the seconds each ranking took (median over seeds).
Data: breast_cancer and digits (scikit-learn), fair and anes96 (statsmodels).

Run: ``python benchmarks/bench_label_issues.py [--seeds 3]`` (needs cleanlab
and statsmodels: ``pip install ".[test]"``).
"""

import argparse
import time

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, find_label_issues

EST = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)


def datasets():
    from statsmodels.datasets import anes96, fair

    yield "breast_cancer", *load_breast_cancer(return_X_y=True)
    yield "digits", *load_digits(return_X_y=True)
    frame = fair.load_pandas().data
    yield "fair", frame.drop(columns=["affairs"]).to_numpy(float), \
        (frame["affairs"] > 0).astype(int).to_numpy()
    frame = anes96.load_pandas().data
    yield "anes96", frame.drop(columns=["vote"]).to_numpy(float), \
        frame["vote"].astype(int).to_numpy()


def flip(y, seed, fraction=0.1):
    rng = np.random.default_rng(seed)
    flips = rng.choice(len(y), int(round(fraction * len(y))), replace=False)
    classes = np.unique(y)
    noisy = y.copy()
    for i in flips:
        noisy[i] = rng.choice(classes[classes != y[i]])
    return noisy, flips


def found(order, flips, fraction):
    return np.isin(flips, order[: int(round(fraction * len(order)))]).mean()


def main():
    from cleanlab.rank import get_label_quality_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--newton-steps", default="auto",
                        type=lambda v: v if v == "auto" else int(v),
                        help="Newton steps per fold: a number, or 'auto' (the default: "
                             "until each fold's refit)")
    args = parser.parse_args()
    fractions = (0.05, 0.1, 0.2)
    print(f"fraction of the flipped labels found when 5% / 10% / 20% of the rows are checked "
          f"(mean of {args.seeds} seeds), fits, seconds (median)")
    print(f"{'data':14s} {'ranking':15s} {'5%':>6s} {'10%':>6s} {'20%':>6s} {'fits':>5s} "
          f"{'seconds':>8s}")
    for name, X, y in datasets():
        X = StandardScaler().fit_transform(X)
        results = {}
        for seed in range(args.seeds):
            noisy, flips = flip(y, seed)
            idx = np.searchsorted(np.unique(noisy), noisy)
            t0 = time.perf_counter()
            model = clone(EST).fit(X, noisy)
            t_fit = time.perf_counter() - t0
            runs = {}
            t0 = time.perf_counter()
            runs["self_influence"] = (np.argsort(model.self_influence(), kind="stable"), 1,
                                      t_fit + time.perf_counter() - t0)
            t0 = time.perf_counter()
            runs["train_loss"] = (np.argsort(-model.loss_values(X, noisy), kind="stable"), 1,
                                  t_fit + time.perf_counter() - t0)
            t0 = time.perf_counter()
            ranking = find_label_issues(model, newton_steps=args.newton_steps)["position"].to_numpy()
            runs["skinfluence"] = (ranking, 1, t_fit + time.perf_counter() - t0)
            t0 = time.perf_counter()
            probs = cross_val_predict(clone(EST), X, noisy, cv=5, method="predict_proba")
            scores = get_label_quality_scores(idx, probs, method="self_confidence")
            runs["cleanlab"] = (np.argsort(scores, kind="stable"), 5,
                                time.perf_counter() - t0)
            for key, (order, fits, seconds) in runs.items():
                results.setdefault(key, []).append(
                    [found(order, flips, f) for f in fractions] + [fits, seconds])
        for key, rows in results.items():
            rows = np.array(rows)
            mean = rows[:, :3].mean(axis=0)
            print(f"{name:14s} {key:15s} {mean[0]:6.2f} {mean[1]:6.2f} {mean[2]:6.2f} "
                  f"{int(rows[0, 3]):5d} {np.median(rows[:, 4]):8.2f}")


if __name__ == "__main__":
    main()
