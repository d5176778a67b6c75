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
from scipy.linalg import cho_factor, cho_solve, cholesky, solve_triangular
from scipy.special import expit, softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler

from sklearn.base import clone

from skinfluence import InfluenceLogisticRegression, RBFSmoothHingeSVC, SmoothHingeSVC
from skinfluence.solvers import ConjugateGradient


def logistic_derivatives(f, y):
    p = expit(f)
    return p - y, p * (1 - p)


def smooth_hinge_derivatives(t):
    def derivatives(f, y):
        sign = np.where(y == 1, 1.0, -1.0)
        q = expit((1 - sign * f) / t)
        return -sign * q, q * (1 - q) / t

    return derivatives


def floor_state(X, y, coef, intercept, C, K, deriv=logistic_derivatives):
    """Loss derivatives, Hessian and its Cholesky factor, written directly."""
    n = X.shape[0]
    Xt = np.hstack([X, np.ones((n, 1))])
    D = Xt.shape[1]
    F = X @ coef.T + intercept
    if K == 1:
        g, a = deriv(F[:, 0], y)
        g = g[:, None]
        H = Xt.T @ (Xt * a[:, None]) / n
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


def floor_influence(X, y, Xte, yte, coef, intercept, C, K, state=None,
                    deriv=logistic_derivatives):
    Xt, g, cf = state or floor_state(X, y, coef, intercept, C, K, deriv)
    Fte = Xte @ coef.T + intercept
    if K == 1:
        gte = deriv(Fte[:, 0], yte)[0][:, None]
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


def floor_self_influence(X, y, coef, intercept, C, K, state=None,
                         deriv=logistic_derivatives):
    Xt, g, cf = state or floor_state(X, y, coef, intercept, C, K, deriv)
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


def run_workload(name, est, X, y, Xte, yte, repeats, deriv=logistic_derivatives,
                 features=None):
    """Time ``est`` (fitted on X, y) against the floor.

    ``features(X)`` gives the floor its own feature map (identity by default);
    the floor then works on those features, as the estimator does.
    """
    clf = est
    K = clf.coef_.shape[0]
    yi = np.searchsorted(clf.classes_, y)
    yti = np.searchsorted(clf.classes_, yte)
    feat = features or (lambda A: A)

    def floor_args():
        return (feat(X), yi, clf.coef_, clf.intercept_, clf.C, K)

    def ours_cold_loss():
        clf._influence_cache.clear()
        return clf.influence_on_loss(Xte, yte)

    def ours_cold_self():
        clf._influence_cache.clear()
        return clf.self_influence()

    def floor_cold_loss():
        return floor_influence(*floor_args()[:2], feat(Xte), yti, *floor_args()[2:],
                               deriv=deriv)

    def floor_cold_self():
        return floor_self_influence(*floor_args(), deriv=deriv)

    Phi = feat(X)
    fl_args = (Phi, yi, clf.coef_, clf.intercept_, clf.C, K)
    fl_state = floor_state(*fl_args, deriv=deriv)
    Phite = feat(Xte)
    clf.self_influence()  # warm the cache
    timings, res = median_times(
        {
            "ours cold loss": ours_cold_loss,
            "floor cold loss": floor_cold_loss,
            "ours cold self": ours_cold_self,
            "floor cold self": floor_cold_self,
        },
        repeats,
    )
    clf.self_influence()
    warm, res_warm = median_times(
        {
            "ours warm loss": lambda: clf.influence_on_loss(Xte, yte),
            "floor warm loss": lambda: floor_influence(
                Phi, yi, Phite, yti, *fl_args[2:], state=fl_state, deriv=deriv
            ),
            "ours warm self": lambda: clf.self_influence(),
            "floor warm self": lambda: floor_self_influence(
                *fl_args, state=fl_state, deriv=deriv
            ),
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


def floor_cg_influence(X, yi, Xte, yti, coef, intercept, C, tol):
    """Binary logistic influence by block CG, written directly (Jacobi, all columns)."""
    n = X.shape[0]
    f = X @ coef[0] + intercept[0]
    g, a = logistic_derivatives(f, yi)
    gte, _ = logistic_derivatives(Xte @ coef[0] + intercept[0], yti)
    pen = np.r_[np.full(X.shape[1], 1.0 / (C * n)), 0.0]

    def hv(V):
        Z = a[:, None] * (X @ V[:-1] + V[-1])
        return np.vstack([X.T @ Z, Z.sum(0, keepdims=True)]) / n + pen[:, None] * V

    diag = np.r_[(X * X).T @ a, a.sum()] / n + pen
    B = np.vstack([(Xte * gte[:, None]).T, gte[None, :]])
    S = np.zeros_like(B)
    R = B.copy()
    Z = R / diag[:, None]
    Pk = Z.copy()
    rz = (R * Z).sum(0)
    bn = np.linalg.norm(B, axis=0)
    while (np.linalg.norm(R, axis=0) / bn).max() > tol:
        HP = hv(Pk)
        alpha = rz / (Pk * HP).sum(0)
        S += alpha * Pk
        R -= alpha * HP
        Z = R / diag[:, None]
        rz_new = (R * Z).sum(0)
        Pk = Z + rz_new / rz * Pk
        rz = rz_new
    return -((X @ S[:-1] + S[-1]) * g[:, None]).T


def run_cg_workload(name, X, y, Xte, yte, repeats):
    """influence_on_loss with CG (tol 1e-10) vs. the same CG written directly."""
    clf = fitted_logistic(X, y)
    cgclf = clone(clf).set_params(influence_solver=ConjugateGradient(tol=1e-10))
    cgclf.fit(X, y)
    args = (X, y, Xte, yte, clf.coef_, clf.intercept_, clf.C)
    cgclf.influence_on_loss(Xte, yte)  # warm

    def ours_cold():
        cgclf._influence_cache.clear()
        return cgclf.influence_on_loss(Xte, yte)

    timings, res = median_times(
        {
            "ours cold": ours_cold,
            "ours warm": lambda: cgclf.influence_on_loss(Xte, yte),
            "floor cg": lambda: floor_cg_influence(*args, tol=1e-10),
            "floor direct": lambda: floor_influence(X, y, Xte, yte, clf.coef_, clf.intercept_,
                                                    clf.C, 1),
        },
        repeats,
    )
    err = check_close(res["ours warm"], res["floor direct"], f"{name} CG vs direct")
    rows = []
    for mode in ("cold", "warm"):
        o = timings[f"ours {mode}"]
        rows.append((name, f"CG influence_on_loss, {mode} / CG floor", o, timings["floor cg"],
                     o / timings["floor cg"]))
        rows.append((name, f"CG influence_on_loss, {mode} / direct floor", o,
                     timings["floor direct"], o / timings["floor direct"]))
    print(f"{name}: CG agrees with the direct floor to {err:.1e} relative; "
          f"CG iterations {cgclf._state().solver.iterations[-1]}")
    return rows


def fitted_logistic(X, y):
    return InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200).fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--p", type=int, default=200)
    parser.add_argument("--rbf-n", type=int, default=2000)
    parser.add_argument("--wide-n", type=int, default=20_000)
    parser.add_argument("--wide-p", type=int, default=2_000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X, y = make_classification(
        n_samples=args.n + 100, n_features=args.p, n_informative=args.p // 4,
        flip_y=0.05, random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    Xtr, ytr, Xte, yte = X[100:], y[100:], X[:100], y[:100]
    Xd, yd = load_digits(return_X_y=True)
    Xd = StandardScaler().fit_transform(Xd)
    test = rng.choice(len(yd), 100, replace=False)
    m = args.rbf_n
    Xr, yr, Xrt, yrt = Xtr[:m], ytr[:m], Xte, yte
    rbf = RBFSmoothHingeSVC(gamma=0.5 / args.p, t=0.1).fit(Xr, yr)
    L = cholesky(rbf_kernel(Xr, Xr, gamma=rbf.gamma_) + rbf.feature_map_.jitter * np.eye(m),
                 lower=True)
    workloads = [
        (f"logistic {args.n}x{args.p}", fitted_logistic(Xtr, ytr), Xtr, ytr, Xte, yte, {}),
        ("logistic digits 1797x64x10", fitted_logistic(Xd, yd), Xd, yd, Xd[test], yd[test], {}),
        (f"smooth hinge {args.n}x{args.p}", SmoothHingeSVC(t=0.1).fit(Xtr, ytr),
         Xtr, ytr, Xte, yte, {"deriv": smooth_hinge_derivatives(0.1)}),
        (f"RBF smooth hinge {m}x{args.p}", rbf, Xr, yr, Xrt, yrt,
         {"deriv": smooth_hinge_derivatives(0.1),
          "features": lambda A: solve_triangular(
              L, rbf_kernel(Xr, A, gamma=rbf.gamma_), lower=True).T}),
    ]

    Xw, yw = make_classification(
        n_samples=args.wide_n + 100, n_features=args.wide_p, n_informative=args.wide_p // 10,
        flip_y=0.05, random_state=1,
    )
    Xw = StandardScaler().fit_transform(Xw)
    workloads.insert(1, (f"logistic {args.wide_n}x{args.wide_p}",
                         fitted_logistic(Xw[100:], yw[100:]), Xw[100:], yw[100:], Xw[:100],
                         yw[:100], {}))

    rows = []
    for name, est, *data, kw in workloads:
        rows += run_workload(name, est, *data, repeats=args.repeats, **kw)
    rows += run_cg_workload(f"logistic {args.n}x{args.p}", Xtr, ytr, Xte, yte, args.repeats)
    rows += run_cg_workload(f"logistic {args.wide_n}x{args.wide_p}", Xw[100:], yw[100:],
                            Xw[:100], yw[:100], args.repeats)
    print(f"median of {args.repeats} interleaved runs; ratio = skinfluence / floor")
    print(f"{'workload':32s} {'quantity':44s} {'ours [s]':>9s} {'floor [s]':>9s} {'ratio':>6s}")
    for r in rows:
        print(f"{r[0]:32s} {r[1]:44s} {r[2]:9.4f} {r[3]:9.4f} {r[4]:6.2f}")


if __name__ == "__main__":
    main()
