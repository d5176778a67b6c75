"""Influence for a Poisson GLM: its cost against the fit, and against statsmodels.

On a Poisson problem (``--rows`` x ``--cols``, standard normal features, a log
rate linear in a quarter of them), times, as medians of ``--repeats``
interleaved runs:

* the fit (``PoissonRegressor(solver="newton-cholesky")``), then, on the fitted
  drop-in, cold (a fresh estimator, so the Hessian is built and factored) and
  warm: ``influence_on_loss`` for 100 test rows, ``self_influence``,
  ``influence_on_params(kind="newton")``, ``cooks_distance`` and
  ``approx_cross_val_predict`` (one Newton step per fold) against scikit-learn's
  ``cross_val_predict(cv=5)``;
* the unpenalised model's one-step parameter change and Cook's distance against
  statsmodels' ``GLM(Poisson).fit().get_influence()`` (``d_params`` and
  ``cooks_distance``), both including their fits, and the largest difference
  between the two answers.

Run: ``python benchmarks/bench_glm.py [--rows 50000] [--cols 50]``
"""

import argparse
import time

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import PoissonRegressor
from sklearn.model_selection import cross_val_predict

from skinfluence import InfluencePoissonRegressor


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, d = args.rows, args.cols
    X = rng.normal(size=(n, d))
    beta = np.zeros(d)
    beta[: max(1, d // 4)] = rng.normal(scale=0.3 / np.sqrt(max(1, d // 4)), size=max(1, d // 4))
    y = rng.poisson(np.exp(-0.5 + X @ beta)).astype(float)
    Xt, yt = X[:100], y[:100]
    kw = dict(alpha=1e-3, solver="newton-cholesky", tol=1e-10, max_iter=100)

    def fresh():
        return InfluencePoissonRegressor(**kw).fit(X, y)

    warm = fresh()
    warm.self_influence()
    queries = {
        "influence_on_loss (100 test rows)": lambda e: e.influence_on_loss(Xt, yt),
        "self_influence": lambda e: e.self_influence(),
        "influence_on_params(kind='newton')": lambda e: e.influence_on_params(kind="newton"),
        "cooks_distance": lambda e: e.cooks_distance(),
        "approx_cross_val_predict (5 folds)": lambda e: e.approx_cross_val_predict(cv=5),
    }
    times = {"fit (PoissonRegressor, newton-cholesky)": [],
             "sklearn cross_val_predict(cv=5)": []}
    for name in queries:
        times[name + ", cold"] = []
        times[name + ", warm"] = []
    for _ in range(args.repeats):  # interleaved
        times["fit (PoissonRegressor, newton-cholesky)"].append(
            timed(lambda: PoissonRegressor(**kw).fit(X, y))[0])
        times["sklearn cross_val_predict(cv=5)"].append(
            timed(lambda: cross_val_predict(PoissonRegressor(**kw), X, y, cv=5))[0])
        for name, q in queries.items():
            est = fresh()
            times[name + ", cold"].append(timed(lambda: q(est))[0])
            times[name + ", warm"].append(timed(lambda: q(warm))[0])
    fit = np.median(times["fit (PoissonRegressor, newton-cholesky)"])
    print(f"Poisson GLM, {n} x {d}, alpha={kw['alpha']}; medians of {args.repeats} "
          "interleaved runs")
    print(f"{'':45s} {'seconds':>9s} {'x fit':>7s}")
    for name, ts in times.items():
        t = np.median(ts)
        print(f"{name:45s} {t:9.3f} {t / fit:7.2f}")
    cv = np.median(times["sklearn cross_val_predict(cv=5)"])
    approx = np.median(times["approx_cross_val_predict (5 folds), warm"])
    print(f"approx_cross_val_predict / cross_val_predict: {approx / cv:.2f}")

    try:
        import statsmodels.api as sm
    except ImportError:
        print("statsmodels not installed: peer comparison skipped")
        return
    unpen = dict(kw, alpha=0.0)
    Xc = sm.add_constant(X)
    ours_t, theirs_t = [], []
    for _ in range(args.repeats):
        t, (dp, ck) = timed(lambda: (lambda e: (e.influence_on_params(kind="newton"),
                                                e.cooks_distance()))(
            clone(InfluencePoissonRegressor(**unpen)).fit(X, y)))
        ours_t.append(t)
        t, (sdp, sck) = timed(lambda: (lambda i: (i.d_params, i.cooks_distance[0]))(
            sm.GLM(y, Xc, family=sm.families.Poisson()).fit(tol=1e-10).get_influence()))
        theirs_t.append(t)
    ours_dp = -np.column_stack([dp[:, -1], dp[:, :-1]])
    print(f"\nunpenalised, fit + d_params + Cook's distance: skinfluence "
          f"{np.median(ours_t):.3f} s, statsmodels {np.median(theirs_t):.3f} s "
          f"(ratio {np.median(ours_t) / np.median(theirs_t):.2f}); max |difference| "
          f"d_params {np.abs(ours_dp - sdp).max():.1e}, Cook's {np.abs(ck - sck).max():.1e}")


if __name__ == "__main__":
    main()
