"""Every influence quantity against its BLAS floor, cold and warm, in one table.

The floor is the same linear algebra written directly with numpy/scipy in this
file: closed-form logistic / softmax derivatives, the Hessian as GEMMs, one
Cholesky factorisation, triangular or Cholesky solves, and the products that turn
solves into the answer -- nothing else (no validation, no checks, no chunking).
"cold" starts from the fitted coefficients (ours: a fresh cache, so the Hessian is
built, factored and checked for stationarity; the floor builds and factors it
too); "warm" reuses the factorisation on both sides. Each answer is checked
against the floor (relative error printed) before its time is trusted.

Workloads (as ``../shared/bench-peers``): W1 digits / 16, 1,400 rows, 10 classes
(P = 650); W2 ``make_classification`` 50,000 x 200; W3 20,000 x 2,000; plus a
tiny 200 x 5 problem whose absolute difference is the per-call overhead.

Run: ``python benchmarks/bench_floor.py [W1 W2 W3 tiny] [--repeats 5]``, or ``grid``
for the scaling grid (n = 10k...200k at p = 200; p = 100...2,000 at n = 20k); with
``--solvers``, ``influence_on_loss`` by CG and LiSSA (defaults, and the paper's plain
recursion) against the same floor, with steps and errors.
"""

import argparse
import time
import warnings

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.linalg.blas import dgemm, dsyrk
from scipy.special import expit, logsumexp, softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, train_test_split

from skinfluence import InfluenceLogisticRegression
from skinfluence.solvers import ConjugateGradient, LiSSA


def workload(name):
    if name == "W1":
        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, train_size=1400, stratify=y,
                                              random_state=0)
        return Xtr, ytr, Xte[:100], yte[:100]
    sizes = {"W2": (50_000, 200), "W3": (20_000, 2_000), "tiny": (200, 5)}
    if name.startswith("n="):  # the scaling grid, e.g. n=200000,p=200
        try:
            n, p = (int(part.split("=")[1]) for part in name.split(","))
        except ValueError:
            raise SystemExit(f"a grid workload reads n=ROWS,p=FEATURES; got {name!r}")
        sizes[name] = (n, p)
    if name in sizes:
        n, p = sizes[name]
        X, y = make_classification(n_samples=n + 100, n_features=p, random_state=0)
        return X[:n], y[:n], X[n:], y[n:]
    raise SystemExit(f"unknown workload {name!r}")


#: The scaling grid of the issue: n = 10k...200k at p = 200, p = 100...2,000 at n = 20k.
GRID = ["n=10000,p=200", "n=50000,p=200", "n=200000,p=200",
        "n=20000,p=100", "n=20000,p=500", "n=20000,p=2000"]


# ------------------------------------------------------------------ the floor
def mm(A, B):
    """``A @ B`` by scipy's BLAS, as the factorisation and solves (numpy's and scipy's
    OpenBLAS pools spin against each other when alternated): ``(B^T A^T)^T``."""
    (a, ta), (b, tb) = [(M.T, 0) if M.flags.c_contiguous else (np.asfortranarray(M), 1)
                        for M in (A, B)]
    return dgemm(1.0, b, a, trans_a=tb, trans_b=ta).T


class Floor:
    """Derivatives, Hessian and factor of ``R`` for (multinomial) logistic regression."""

    def __init__(self, X, yi, coef, intercept, C):
        n = X.shape[0]
        self.K = K = coef.shape[0]
        self.Xt = Xt = np.hstack([X, np.ones((n, 1))])
        self.D = D = Xt.shape[1]
        self.n, self.yi = n, yi
        self.Theta = np.hstack([coef, intercept[:, None]])
        F = Xt @ self.Theta.T
        if K == 1:
            p = expit(F[:, 0])
            self.G = (p - yi)[:, None]
            self.A = (p * (1 - p))[:, None, None]
            Z = Xt * np.sqrt(self.A[:, 0, 0] / n)[:, None]
            H = dsyrk(1.0, Z.T, trans=0)  # scipy's BLAS, as the Cholesky after it
            H = np.triu(H) + np.triu(H, 1).T
        else:
            Pr = softmax(F, axis=1)
            self.G = Pr - np.eye(K)[yi]
            self.A = Pr[:, :, None] * (np.eye(K)[None] - Pr[:, None, :])
            H = np.empty((K * D, K * D))
            for k in range(K):
                for m in range(k, K):
                    # scipy's BLAS, as the Cholesky after it (numpy's and scipy's
                    # OpenBLAS pools spin against each other when alternated)
                    B = dgemm(1.0 / n, (Xt * self.A[:, k, m][:, None]).T, Xt.T, trans_b=1)
                    H[k * D:(k + 1) * D, m * D:(m + 1) * D] = B
                    H[m * D:(m + 1) * D, k * D:(k + 1) * D] = B.T
        pen = np.tile(np.r_[np.full(D - 1, 1.0 / (C * n)), 0.0], K)
        H[np.diag_indices_from(H)] += pen
        self.pen = pen
        if K > 1:  # the flat common intercept shift: solve on its complement
            v = np.zeros((K, D))
            v[:, -1] = 1 / np.sqrt(K)
            H += np.mean(np.diag(H)) * np.outer(v.ravel(), v.ravel())
        self.H = H
        self.cf = cho_factor(H, lower=True)

    def grads(self, Xt, G):
        return (G[:, :, None] * Xt[:, None, :]).reshape(len(Xt), -1)

    def test_grads(self, Xte, yte):
        Xt = np.hstack([Xte, np.ones((len(Xte), 1))])
        F = Xt @ self.Theta.T
        G = (expit(F[:, 0]) - yte)[:, None] if self.K == 1 else softmax(F, 1) - np.eye(
            self.K)[yte]
        return Xt, self.grads(Xt, G)

    def loss(self, Xt, yi, F):
        if self.K == 1:
            return np.logaddexp(0, F[..., 0]) - yi * F[..., 0]
        return logsumexp(F, axis=-1) - np.take_along_axis(
            F, np.broadcast_to(yi, F.shape[:-1])[..., None], -1)[..., 0]

    def influence_on_loss(self, Xte, yte):
        _, Gte = self.test_grads(Xte, yte)
        S3 = cho_solve(self.cf, Gte.T).reshape(self.K, self.D, -1)
        out = np.zeros((len(Xte), self.n))
        for k in range(self.K):
            out -= (mm(self.Xt, S3[k]) * self.G[:, k:k + 1]).T
        return out

    def self_influence(self):
        V = solve_triangular(self.cf[0], self.grads(self.Xt, self.G).T, lower=True)
        return -np.einsum("ij,ij->j", V, V)

    def influence_on_params(self):
        # -H^-1 g_i for every row: one GEMM with the explicit inverse (fewer passes
        # than two triangular solves over n right-hand sides)
        return -mm(self.grads(self.Xt, self.G), self.Hinv)

    @property
    def Hinv(self):
        if not hasattr(self, "_Hinv"):
            self._Hinv = cho_solve(self.cf, np.eye(len(self.H)))
        return self._Hinv

    def newton_coef(self):
        """Every row's Newton coefficient (n, K), kept: with one output from the
        leverages ``||L^-1 x~_i||^2`` (one triangular solve), else from the steps' pass."""
        if self.K == 1 and not hasattr(self, "_q"):
            V = solve_triangular(self.cf[0], self.Xt.T, lower=True)
            self._q = np.einsum("ij,ij->j", V, V)
            c = 1.0 / self.n
            self._coef = (c * self.G[:, 0] / (1 - c * self.A[:, 0, 0] * self._q))[:, None]
        elif not hasattr(self, "_coef"):
            self.newton_steps()
        return self._coef

    def newton_steps(self):
        """theta_-i - theta_hat for every row, (n, P) in the (K, D) layout; kept when
        they fit in 2**22 floats.

        Rank-K Woodbury per row; ``H^{-1} (e_k (x) x~_i)`` are columns of the
        explicit inverse times the row (one GEMM), the cheapest way to get all
        ``n K`` of them."""
        if hasattr(self, "_steps"):
            return self._steps
        n, K, D, c = self.n, self.K, self.D, 1.0 / self.n
        S = mm(self.Xt, self.Hinv.reshape(K * D * K, D).T).reshape(n, K, D, K)
        M = np.matmul(self.Xt[:, None, None, :], S).reshape(n, K, K)
        lhs = np.eye(K)[None] - c * np.matmul(self.A, M)
        self._coef = np.linalg.solve(lhs, self.G[:, :, None])[:, :, 0] * c
        steps = np.matmul(S.reshape(n, K * D, K), self._coef[:, :, None])[:, :, 0]
        if steps.size <= 2**22:  # kept when small, as skinfluence keeps them
            self._steps = steps
        return steps

    def newton_loss(self, Xte, yte):
        Xt, _ = self.test_grads(Xte, yte)
        F0 = Xt @ self.Theta.T
        if self.K == 1:  # dF = x~_t^T H^-1 x~_i coef_i: the first-order products
            coef = self.newton_coef()[:, 0]
            dF = mm(cho_solve(self.cf, Xt.T).T, self.Xt.T) * coef
            F = F0 + dF
            return (np.logaddexp(0, F) - yte[:, None] * F
                    - (np.logaddexp(0, F0) - yte[:, None] * F0))
        steps = self.newton_steps().reshape(self.n, self.K, self.D)
        dF = np.matmul(Xt, steps.transpose(1, 2, 0))  # (K, m, n)
        F = dF + F0.T[:, :, None]
        top = F.max(axis=0)
        E = np.exp(F - top)
        y_change = np.take_along_axis(dF, yte[None, :, None], 0)[0]
        return (np.log(E.sum(axis=0)) + top - logsumexp(F0, axis=1)[:, None] - y_change)

    def loo_outputs(self):
        F = self.Xt @ self.Theta.T
        if self.K == 1:
            coef = self.newton_coef()
            return F + coef * self._q[:, None]
        steps = self.newton_steps().reshape(self.n, self.K, self.D)
        return F + np.einsum("id,ikd->ik", self.Xt, steps)

    def cv_outputs(self, folds):
        out = np.empty((self.n, self.K))
        g_full = (self.grads(self.Xt, self.G).sum(0) / self.n
                  + self.pen * self.Theta.ravel())
        for f in folds:
            Xf, Af, Gf = self.Xt[f], self.A[f], self.G[f]
            Hf = np.empty_like(self.H)
            for k in range(self.K):
                for m in range(k, self.K):
                    B = Xf.T @ (Xf * Af[:, k, m][:, None]) / self.n
                    Hf[k * self.D:(k + 1) * self.D, m * self.D:(m + 1) * self.D] = B
                    Hf[m * self.D:(m + 1) * self.D, k * self.D:(k + 1) * self.D] = B.T
            gf = self.grads(Xf, Gf).sum(0) / self.n
            step = cho_solve(cho_factor(self.H - Hf, lower=True), g_full - gf)
            out[f] = self.Xt[f] @ (self.Theta - step.reshape(self.K, self.D)).T
        return out


# ------------------------------------------------------------------ timing
def median(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def run(name, repeats):
    X, y, Xte, yte = workload(name)
    est = InfluenceLogisticRegression(solver="newton-cholesky" if name != "W1" else "lbfgs",
                                      tol=1e-10, max_iter=5000).fit(X, y)
    yi, yti = np.searchsorted(est.classes_, y), np.searchsorted(est.classes_, yte)
    folds = [f for _, f in StratifiedKFold(5).split(X, y)]
    kinds = {
        "influence_on_loss (100 test)": (lambda e: e.influence_on_loss(Xte, yte),
                                         lambda f: f.influence_on_loss(Xte, yti)),
        "self_influence": (lambda e: e.self_influence(), lambda f: f.self_influence()),
        "influence_on_params": (lambda e: e.influence_on_params(),
                                lambda f: f.influence_on_params()),
        "influence_on_params newton": (lambda e: e.influence_on_params(kind="newton"),
                                       lambda f: f.newton_steps().copy()),
        "influence_on_loss newton (100 test)": (
            lambda e: e.influence_on_loss(Xte, yte, kind="newton"),
            lambda f: f.newton_loss(Xte, yti)),
        "loo_decision_function": (lambda e: e.loo_decision_function(),
                                  lambda f: f.loo_outputs()),
        "approx_cross_val_predict (5 folds)": (
            lambda e: e.approx_cross_val_predict("decision_function", cv=5),
            lambda f: f.cv_outputs(folds)),
    }
    if X.shape[1] >= 2000:  # n x P answers of 320 MB each: the first-order ones suffice
        for k in ("influence_on_params", "influence_on_params newton",
                  "influence_on_loss newton (100 test)", "loo_decision_function",
                  "approx_cross_val_predict (5 folds)"):
            kinds.pop(k)
    rows = []
    warm_floor = Floor(X, yi, est.coef_, est.intercept_, est.C)
    est.self_influence()
    for q, (ours, floor) in kinds.items():
        def ours_cold():
            est._influence_cache.clear()
            return ours(est)

        t_oc, a = median(ours_cold, repeats)
        t_fc, b = median(lambda: floor(Floor(X, yi, est.coef_, est.intercept_, est.C)),
                         repeats)
        est.self_influence()
        t_ow, _ = median(lambda: ours(est), repeats)
        t_fw, _ = median(lambda: floor(warm_floor), repeats)
        a = np.asarray(a, dtype=float).reshape(len(b), -1)
        b = np.asarray(b, dtype=float).reshape(len(b), -1)
        if q.startswith("influence_on_params"):  # the floor's (K, D) layout -> theta order
            K, D = est.coef_.shape[0], X.shape[1] + 1
            b3 = b.reshape(len(b), K, D)
            b = np.hstack([b3[:, :, :-1].reshape(len(b), -1), b3[:, :, -1]])
        err = np.abs(a - b).max() / np.abs(b).max()
        rows.append((name, q, t_oc, t_fc, t_ow, t_fw, err))
    return rows


def run_solvers(name, repeats):
    """``influence_on_loss`` for 100 test rows, cold, by each solver's defaults (and CG
    at tol 1e-6) against the direct floor: time, ratio, steps and error."""
    X, y, Xte, yte = workload(name)
    est = InfluenceLogisticRegression(solver="newton-cholesky" if name != "W1" else "lbfgs",
                                      tol=1e-10, max_iter=5000).fit(X, y)
    yti = np.searchsorted(est.classes_, yte)
    yi = np.searchsorted(est.classes_, y)
    t_floor, ref = median(
        lambda: Floor(X, yi, est.coef_, est.intercept_, est.C).influence_on_loss(Xte, yti),
        repeats)
    ref = np.asarray(ref).reshape(len(yte), -1)
    rows = []
    for label, solver in [("direct", "direct"), ("cg", "cg"),
                          ("cg tol=1e-6", ConjugateGradient(tol=1e-6)), ("lissa", "lissa"),
                          ("lissa, paper's recursion",
                           LiSSA(preconditioner=None, acceleration=None))]:
        if name == "W1" and label.endswith("recursion"):
            solver.set_params(max_depth=20_000)  # ~14,000 steps: one run is enough
        est.set_params(influence_solver=solver)

        def cold():
            est._influence_cache.clear()
            return est.influence_on_loss(Xte, yte)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, got = median(cold, 1 if label.endswith("recursion") else repeats)
        st = est._state().solver
        steps = (st.iterations[0] if getattr(st, "iterations", None)
                 else st.steps[0] if hasattr(st, "steps") else "")
        err = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
        rows.append((name, label, t, t_floor, steps, np.median(err), err.max()))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["tiny", "W1", "W2", "W3"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--solvers", action="store_true",
                        help="time the solvers' defaults (CG, LiSSA) against the floor")
    args = parser.parse_args()
    if args.workloads == ["grid"]:
        args.workloads = GRID
    if args.solvers:
        print(f"influence_on_loss, 100 test rows, cold; medians of {args.repeats} runs; "
              "ratio = solver / direct floor; error = per-test-row relative")
        print(f"{'':5s} {'solver':26s} {'s':>8s} {'floor':>8s} {'ratio':>6s} {'steps':>6s} "
              f"{'median err':>10s} {'max err':>8s}")
        for name in args.workloads:
            for w, label, t, tf, steps, med, worst in run_solvers(name, args.repeats):
                print(f"{w:5s} {label:26s} {t:8.3f} {tf:8.3f} {t / tf:6.1f} {steps!s:>6s} "
                      f"{med:10.1e} {worst:8.1e}")
        return
    rows = []
    for name in args.workloads:
        rows += run(name, args.repeats)
    print(f"medians of {args.repeats} runs; ratio = skinfluence / floor; "
          "tiny: the difference is the per-call overhead")
    print(f"{'':5s} {'quantity':38s} {'cold s':>8s} {'floor':>8s} {'ratio':>6s} "
          f"{'warm s':>8s} {'floor':>8s} {'ratio':>6s} {'rel err':>8s}")
    for name, q, oc, fc, ow, fw, err in rows:
        extra = (f"  overhead {1e3 * (oc - fc):.1f} / {1e3 * (ow - fw):.1f} ms"
                 if name == "tiny" else "")
        print(f"{name:5s} {q:38s} {oc:8.4f} {fc:8.4f} {oc / fc:6.2f} {ow:8.4f} {fw:8.4f} "
              f"{ow / fw:6.2f} {err:8.1e}{extra}")
    # kind="newton" against the first-order kind, from the same runs (ours)
    times = {(name, q): (oc, ow) for name, q, oc, fc, ow, fw, err in rows}
    pairs = [("influence_on_loss newton (100 test)", "influence_on_loss (100 test)"),
             ("influence_on_params newton", "influence_on_params")]
    lines = []
    for name in dict.fromkeys(r[0] for r in rows):
        for newton, first in pairs:
            if (name, newton) in times:
                (nc, nw), (c1, w1) = times[name, newton], times[name, first]
                lines.append(f"{name:5s} {newton:38s} {nc / c1:6.2f} {nw / w1:6.2f}")
    if lines:
        print("kind='newton' / first-order kind (skinfluence's times):  cold   warm")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
