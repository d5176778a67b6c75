"""Memory at a million rows, and a sparse text-like workload.

1. ``--rows``: binary logistic regression on n = 1,000,000 x p = 50 (dense). After
   the fit, ``influence_on_loss`` (10 test points) and ``self_influence`` run while
   ``tracemalloc`` records the peak of new allocations; it is printed next to the
   size of X and of the outputs. Training rows are processed in bounded chunks,
   so the peak stays well under a second copy of X plus the output.

2. ``--sparse``: a CSR matrix, n = 20,000 x p = 20,000 with 0.5% non-zeros
   (uniformly placed counts). ``influence_on_loss`` for 100 test rows with the
   default solver (``"auto"`` picks conjugate gradients: 20,001 parameters) on the
   sparse matrix, against ``"direct"`` on the same data densified (forms and
   factors the 20,001 x 20,001 Hessian; takes minutes and ~10 GB). Both must
   agree to 1e-6.

3. ``--preconditioners``: CG's preconditioners side by side (Jacobi; Nystrom of
   rank 100 from a plain sketch; rank 100 after two subspace iterations -- the
   default here; rank 200 after two), median time and iterations per solve, on
   that matrix and on a bag-of-words one whose 20,000 words are drawn with Zipf
   frequencies (100 draws per document, ``log(1 + count)``).

4. ``--spectrum``: what any rank-k preconditioner could do on both matrices. The
   spectrum of H is estimated by stochastic Lanczos quadrature (6 probes, 160
   steps, full reorthogonalisation); CG is then run on a diagonal matrix with that
   spectrum, as it is and with its top k eigenvalues mapped onto the (k+1)-th --
   what a Nystrom preconditioner built from the exact eigenvectors does. Uniform
   placement puts a Marchenko-Pastur bulk of eigenvalues down to the penalty,
   which no low rank removes; word frequencies make the spectrum decay.

5. ``--auto``: ``influence_solver="auto"`` beyond 4,000 parameters (1,000 rows, 10
   classes, 410 features: P = 4,110) starts with CG; a call that needs a solve per
   training row factors H instead. Per-row calls side by side with CG kept
   throughout (``influence_solver="cg"``), and ``influence_on_loss`` for 10 rows.

Run: ``python benchmarks/bench_scale.py [--rows] [--sparse] [--no-dense]
[--preconditioners] [--spectrum] [--auto]``
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from skinfluence import InfluenceLogisticRegression
from skinfluence.solvers import ConjugateGradient


def rows_benchmark(n=1_000_000, p=50):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    y = (X[:, :5].sum(1) + rng.standard_normal(n) > 0).astype(int)
    t0 = time.perf_counter()
    clf = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10).fit(X, y)
    t_fit = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    infl = clf.influence_on_loss(X[:10], y[:10])
    t_loss = time.perf_counter() - t0
    _, peak_loss = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    si = clf.self_influence()
    t_self = time.perf_counter() - t0
    _, peak_self = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mb = 1e6
    print(f"n={n:,} x p={p}: X {X.nbytes / mb:.0f} MB; fit {t_fit:.1f} s")
    print(f"  influence_on_loss (10 test, incl. building H): {t_loss:.2f} s, "
          f"peak new memory {peak_loss / mb:.0f} MB (output {infl.nbytes / mb:.0f} MB)")
    print(f"  self_influence: {t_self:.2f} s, peak new memory {peak_self / mb:.0f} MB "
          f"(output {si.nbytes / mb:.0f} MB)")
    print(f"  peak / (X + output): {max(peak_loss, peak_self) / (X.nbytes + infl.nbytes):.2f}; "
          f"process max RSS {rss_before:.0f} MB after fit, {rss_after:.0f} MB after influence")


def uniform_counts(n=20_000, p=20_000, density=0.005):
    """Counts (1 + Poisson(2)) at uniformly random positions, and labels from a
    sparse linear rule."""
    rng = np.random.default_rng(0)
    X = sp.random(n, p, density=density, format="csr", random_state=0,
                  data_rvs=lambda k: rng.poisson(2, k) + 1.0)
    return X, _labels(X, rng)


def zipf_words(n=20_000, p=20_000, draws=100):
    """Bag of words: ``draws`` words per document from a Zipf(1) vocabulary of ``p``,
    as ``log(1 + count)``, and labels from a sparse linear rule."""
    rng = np.random.default_rng(0)
    freq = 1.0 / np.arange(1, p + 1)
    words = rng.choice(p, size=(n, draws), p=freq / freq.sum())
    X = sp.csr_matrix((np.ones(n * draws), (np.repeat(np.arange(n), draws), words.ravel())),
                      shape=(n, p))
    X.sum_duplicates()
    X.data = np.log1p(X.data)
    return X, _labels(X, rng)


def _labels(X, rng):
    w = rng.standard_normal(X.shape[1]) * (rng.random(X.shape[1]) < 0.05)
    return (X @ w + 0.5 * rng.standard_normal(X.shape[0]) > 0).astype(int)


def sparse_benchmark(dense=True):
    X, y = uniform_counts()
    n, p = X.shape
    density = X.nnz / (n * p)
    Xte, yte = X[:100], y[:100]
    clf = InfluenceLogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, y)
    times = []
    for _ in range(3):
        clf._influence_cache.clear()
        t0 = time.perf_counter()
        infl = clf.influence_on_loss(Xte, yte)
        times.append(time.perf_counter() - t0)
    t_sparse = float(np.median(times))
    solver = clf._state().solver
    print(f"sparse {n:,} x {p:,}, {X.nnz:,} non-zeros ({100 * density:.1f}%): "
          f"influence_on_loss (100 test) with {type(solver).__name__}: median {t_sparse:.2f} s "
          f"(CG iterations per solve: {solver.iterations})")
    if not dense:
        return
    Xd = X.toarray()
    dclf = InfluenceLogisticRegression(C=1.0, tol=1e-10, max_iter=5000, influence_solver="direct")
    dclf = dclf.fit(Xd, y)
    t0 = time.perf_counter()
    dinfl = dclf.influence_on_loss(Xd[:100], yte)
    t_dense = time.perf_counter() - t0
    err = np.abs(dinfl - infl).max() / np.abs(dinfl).max()
    print(f"direct on the densified matrix: {t_dense:.1f} s; ratio sparse-CG / dense-direct "
          f"= {t_sparse / t_dense:.3f}; agreement {err:.1e} relative")


def preconditioner_benchmark(repeats=3):
    configs = [("jacobi", ConjugateGradient(preconditioner="jacobi")),
               ("nystrom 100, plain", ConjugateGradient(preconditioner="nystrom", rank=100,
                                                        iterated_power=0)),
               ("nystrom 100, q=2", ConjugateGradient(preconditioner="nystrom", rank=100)),
               ("nystrom 200, q=2", ConjugateGradient(preconditioner="nystrom", rank=200))]
    for name, make in [("uniform counts", uniform_counts), ("Zipf words", zipf_words)]:
        X, y = make()
        clf = InfluenceLogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, y)
        Xte, yte = X[:100], y[:100]
        times = {label: [] for label, _ in configs}
        iterations, answers = {}, {}
        for _ in range(repeats):  # interleaved, so that the machine's drift hits all alike
            for label, config in configs:
                clf.set_params(influence_solver=config)  # clears the fitted state
                t0 = time.perf_counter()
                answers[label] = clf.influence_on_loss(Xte, yte)
                times[label].append(time.perf_counter() - t0)
                iterations[label] = clf._state().solver.iterations
        base = np.median(times["jacobi"])
        ref = answers["jacobi"]
        print(f"{name}, {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} non-zeros: CG, "
              f"influence_on_loss (100 test), median of {repeats}")
        for label, _ in configs:
            t = np.median(times[label])
            err = np.abs(answers[label] - ref).max() / np.abs(ref).max()
            # the first entry is the stationarity check's solve at tol 1e-4
            print(f"  {label:18s} {t:6.1f} s ({t / base:.2f}x Jacobi), iterations per "
                  f"solve {iterations[label]}, against Jacobi's answer {err:.1e}")


def _slq_spectrum(matvec, P, probes=6, steps=160, seed=1):
    """P eigenvalues (descending) read off the spectral density that stochastic
    Lanczos quadrature estimates from ``probes`` random starts."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(probes):
        V = np.zeros((P, steps + 1))
        a, b = np.zeros(steps), np.zeros(steps)
        v = rng.standard_normal(P)
        V[:, 0] = v / np.linalg.norm(v)
        for j in range(steps):
            w = matvec(V[:, j])
            a[j] = w @ V[:, j]
            for _ in range(2):  # full reorthogonalisation, twice
                w -= V[:, :j + 1] @ (V[:, :j + 1].T @ w)
            b[j] = np.linalg.norm(w)
            V[:, j + 1] = w / b[j]
        theta, S = np.linalg.eigh(np.diag(a) + np.diag(b[:-1], 1) + np.diag(b[:-1], -1))
        nodes.append(theta)
        weights.append(S[0] ** 2 / probes)
    nodes, weights = np.concatenate(nodes), np.concatenate(weights)
    order = np.argsort(nodes)
    cdf = np.cumsum(weights[order])
    at = np.minimum(np.searchsorted(cdf, (np.arange(P) + 0.5) / P), len(cdf) - 1)
    return nodes[order][at][::-1]


def _cg_iterations(lam, tol=1e-10, seed=0):
    """CG's iterations to ``tol`` on ``diag(lam)`` from a random right-hand side."""
    b = np.random.default_rng(seed).standard_normal(len(lam))
    r, p = b.copy(), b.copy()
    rr, stop = r @ r, tol * np.linalg.norm(b)
    for k in range(1, 10 * len(lam)):
        Ap = lam * p
        alpha = rr / (p @ Ap)
        r -= alpha * Ap
        rr_new = r @ r
        if np.sqrt(rr_new) <= stop:
            return k
        p = r + (rr_new / rr) * p
        rr = rr_new
    return None


def spectrum_benchmark(ranks=(100, 200, 300, 1000, 2000, 5000, 10000)):
    for name, make in [("uniform counts", uniform_counts), ("Zipf words", zipf_words)]:
        X, y = make()
        clf = InfluenceLogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, y)
        op = clf._state().op
        lam = _slq_spectrum(op.matvec, op.P)
        print(f"{name}: H's spectrum by stochastic Lanczos quadrature, condition number "
              f"{lam[0] / lam[-1]:.0f}; CG iterations to 1e-10 on it: {_cg_iterations(lam)}")
        for k in ranks:
            ideal = lam.copy()
            ideal[:k] = lam[k]
            print(f"  exact top {k:5d} eigenvectors inverted: condition number "
                  f"{lam[k] / lam[-1]:6.0f}, CG iterations {_cg_iterations(ideal)}")


def auto_benchmark(repeats=3):
    rng = np.random.default_rng(0)
    n, p, K = 1000, 410, 10
    X = rng.normal(size=(n, p))
    y = np.argmax(X @ (0.1 * rng.normal(size=(p, K))) + rng.gumbel(size=(n, K)), axis=1)
    fitted = InfluenceLogisticRegression(C=0.1, tol=1e-8, max_iter=2000).fit(X, y)
    calls = {"influence_on_loss, 10 rows": lambda m: m.influence_on_loss(X[:10], y[:10]),
             "self_influence": lambda m: m.self_influence(),
             "influence_on_params": lambda m: m.influence_on_params(),
             "loo_predict_proba": lambda m: m.loo_predict_proba()}
    print(f"n={n:,}, {K} classes, P={fitted.coef_.size + K:,}: medians of {repeats}, "
          "each call on a fresh state")
    for name, call in calls.items():
        times = {"auto": [], "cg": []}
        answers, solvers = {}, {}
        for _ in range(repeats):
            for spec in times:
                fitted.set_params(influence_solver=spec)  # a fresh state
                t0 = time.perf_counter()
                answers[spec] = call(fitted)
                times[spec].append(time.perf_counter() - t0)
                solvers[spec] = type(fitted._state().solver).__name__
        ta, tc = np.median(times["auto"]), np.median(times["cg"])
        err = np.abs(answers["auto"] - answers["cg"]).max() / np.abs(answers["cg"]).max()
        print(f"  {name:28s} auto {ta:6.2f} s ({solvers['auto']}), CG throughout {tc:6.2f} s: "
              f"{tc / ta:5.1f}x; agreement {err:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", action="store_true", help="the 1,000,000 x 50 memory run")
    parser.add_argument("--sparse", action="store_true", help="the sparse text-like run")
    parser.add_argument("--no-dense", action="store_true", help="skip direct-on-dense")
    parser.add_argument("--preconditioners", action="store_true",
                        help="CG's preconditioners on uniform and Zipf sparse data")
    parser.add_argument("--spectrum", action="store_true",
                        help="the iterations an ideal rank-k preconditioner would need")
    parser.add_argument("--auto", action="store_true",
                        help="'auto' factoring H for per-row calls beyond 4,000 parameters")
    args = parser.parse_args()
    both = not (args.rows or args.sparse or args.preconditioners or args.spectrum
                or args.auto)
    if args.rows or both:
        rows_benchmark()
    if args.sparse or both:
        sparse_benchmark(dense=not args.no_dense)
    if args.preconditioners:
        preconditioner_benchmark()
    if args.spectrum:
        spectrum_benchmark()
    if args.auto:
        auto_benchmark()


if __name__ == "__main__":
    main()
