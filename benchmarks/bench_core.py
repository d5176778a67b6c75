"""Influence of all training points vs. the BLAS floor, measured side by side.

For each workload the script fits an ``InfluenceLogisticRegression`` once, then
times, interleaved and repeated (medians reported):

* ``influence_on_loss`` of every training point on 100 test points, and
* ``self_influence`` of every training point,

each against the *floor*: the same linear algebra written directly with
numpy/scipy in this file (closed-form loss derivatives, ``X^T diag(a) X``,
Cholesky, triangular solves, one matrix product). "cold" includes forming and
factoring the Hessian (the first call on a fitted model); "warm" reuses it (the
floor then skips it too). Both sides must agree to 1e-8 relative, or the script
stops.

Run: ``python benchmarks/bench_core.py [--repeats 7]``
"""

import argparse
import time

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import expit, softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression


def floor_state(X, y, coef, intercept, C, K):
    """Loss derivatives, Hessian and its Cholesky factor, written directly."""
    n = X.shape[0]
    Xt = np.hstack([X, np.ones((n, 1))])
    D = Xt.shape[1]
    F = X @ coef.T + intercept
    if K == 1:
        p = expit(F[:, 0])
        g = (p - y)[:, None]
        H = Xt.T @ (Xt * (p * (1 - p))[:, None]) / n
    else:
        P = softmax(F, axis=1)
        g = P - np.eye(K)[y]
        H = np.empty((K * D, K * D))
        for k in range(K):
            for l in range(K):
                a = P[:, k] * ((k == l) - P[:, l])
                H[k * D : (k + 1) * D, l * D : (l + 1) * D] = Xt.T @ (Xt * a[:, None]) / n
    pen = np.tile(np.r_[np.full(D - 1, 1.0 / (C * n)), 0.0], K)
    H[np.diag_indices_from(H)] += pen
    if K > 1:  # the common intercept shift is flat: solve on its complement
        v = np.zeros((K, D))
        v[:, -1] = 1 / np.sqrt(K)
        v = v.ravel()
        H += np.mean(np.diag(H)) * np.outer(v, v)
    return Xt, g, cho_factor(H, lower=True)


def floor_grads(Xt, g):
    return (g[:, :, None] * Xt[:, None, :]).reshape(len(Xt), -1)


def floor_influence(X, y, Xte, yte, coef, intercept, C, K, state=None):
    Xt, g, cf = state or floor_state(X, y, coef, intercept, C, K)
    Fte = Xte @ coef.T + intercept
    if K == 1:
        gte = (expit(Fte[:, 0]) - yte)[:, None]
    else:
        gte = softmax(Fte, axis=1) - np.eye(K)[yte]
    Gte = floor_grads(np.hstack([Xte, np.ones((len(Xte), 1))]), gte)
    S = cho_solve(cf, Gte.T)  # (P, m)
    D = Xt.shape[1]
    S3 = S.reshape(K, D, -1)
    out = np.zeros((len(Xte), len(X)))
    for k in range(K):
        out -= ((X @ S3[k, :-1] + S3[k, -1]) * g[:, k : k + 1]).T
    return out


def floor_self_influence(X, y, coef, intercept, C, K, state=None):
    Xt, g, cf = state or floor_state(X, y, coef, intercept, C, K)
    V = solve_triangular(cf[0], floor_grads(Xt, g).T, lower=True)
    return -np.einsum("ij,ij->j", V, V)


def median_times(fns, repeats):
    times = {name: [] for name in fns}
    results = {}
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved, so load hits both sides alike
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}, results


def check_close(a, b, what):
    err = np.abs(a - b).max() / np.abs(b).max()
    if not err < 1e-8:
        raise SystemExit(f"{what}: skinfluence and the floor disagree (rel. error {err:.1e})")
    return err


def run_workload(name, X, y, Xte, yte, repeats):
    clf = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)
    clf.fit(X, y)
    K = clf.coef_.shape[0]
    yi = np.searchsorted(clf.classes_, y)
    yti = np.searchsorted(clf.classes_, yte)
    args = (X, yi, clf.coef_, clf.intercept_, clf.C, K)

    def ours_cold_loss():
        clf._influence_cache.clear()
        return clf.influence_on_loss(Xte, yte)

    def ours_cold_self():
        clf._influence_cache.clear()
        return clf.self_influence()

    fl_state = floor_state(*args)
    clf.self_influence()  # warm the cache
    timings, res = median_times(
        {
            "ours cold loss": ours_cold_loss,
            "floor cold loss": lambda: floor_influence(X, yi, Xte, yti, *args[2:]),
            "ours cold self": ours_cold_self,
            "floor cold self": lambda: floor_self_influence(*args),
        },
        repeats,
    )
    clf.self_influence()
    warm, res_warm = median_times(
        {
            "ours warm loss": lambda: clf.influence_on_loss(Xte, yte),
            "floor warm loss": lambda: floor_influence(
                X, yi, Xte, yti, *args[2:], state=fl_state
            ),
            "ours warm self": lambda: clf.self_influence(),
            "floor warm self": lambda: floor_self_influence(*args, state=fl_state),
        },
        repeats,
    )
    timings.update(warm)
    res.update(res_warm)
    check_close(res["ours cold loss"], res["floor cold loss"], f"{name} influence_on_loss")
    check_close(res["ours cold self"], res["floor cold self"], f"{name} self_influence")
    rows = []
    for q, label in [("loss", "influence_on_loss (100 test)"), ("self", "self_influence")]:
        for mode in ("cold", "warm"):
            o, f = timings[f"ours {mode} {q}"], timings[f"floor {mode} {q}"]
            rows.append((name, f"{label}, {mode}", o, f, o / f))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--p", type=int, default=200)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X, y = make_classification(
        n_samples=args.n + 100, n_features=args.p, n_informative=args.p // 4,
        flip_y=0.05, random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    workloads = [(f"binary {args.n}x{args.p}", X[100:], y[100:], X[:100], y[:100])]
    Xd, yd = load_digits(return_X_y=True)
    Xd = StandardScaler().fit_transform(Xd)
    test = rng.choice(len(yd), 100, replace=False)
    workloads.append(("digits 1797x64, 10 classes", Xd, yd, Xd[test], yd[test]))

    rows = []
    for w in workloads:
        rows += run_workload(*w, repeats=args.repeats)
    print(f"median of {args.repeats} interleaved runs; ratio = skinfluence / floor")
    print(f"{'workload':28s} {'quantity':36s} {'ours [s]':>9s} {'floor [s]':>9s} {'ratio':>6s}")
    for r in rows:
        print(f"{r[0]:28s} {r[1]:36s} {r[2]:9.4f} {r[3]:9.4f} {r[4]:6.2f}")


if __name__ == "__main__":
    main()
