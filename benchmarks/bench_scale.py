"""Memory at a million rows, and a sparse text-like workload.

1. ``--rows``: binary logistic regression on n = 1,000,000 x p = 50 (dense). After
   the fit, ``influence_on_loss`` (10 test points) and ``self_influence`` run while
   ``tracemalloc`` records the peak of new allocations; it is printed next to the
   size of X and of the outputs. Training rows are processed in bounded chunks,
   so the peak stays well under a second copy of X plus the output.

2. ``--sparse``: a bag-of-words-like CSR matrix, n = 20,000 x p = 20,000 with 0.5%
   non-zeros. ``influence_on_loss`` for 100 test rows with the default solver
   (``"auto"`` picks conjugate gradients: 20,001 parameters) on the sparse matrix,
   against ``"direct"`` on the same data densified (forms and factors the
   20,001 x 20,001 Hessian; takes minutes and ~10 GB). Both must agree to 1e-6.

Run: ``python benchmarks/bench_scale.py [--rows] [--sparse] [--no-dense]``
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from skinfluence import InfluenceLogisticRegression


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


def sparse_benchmark(n=20_000, p=20_000, density=0.005, dense=True):
    rng = np.random.default_rng(0)
    X = sp.random(n, p, density=density, format="csr", random_state=0,
                  data_rvs=lambda k: rng.poisson(2, k) + 1.0)
    w = rng.standard_normal(p) * (rng.random(p) < 0.05)
    y = (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(int)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", action="store_true", help="the 1,000,000 x 50 memory run")
    parser.add_argument("--sparse", action="store_true", help="the sparse text-like run")
    parser.add_argument("--no-dense", action="store_true", help="skip direct-on-dense")
    args = parser.parse_args()
    both = not (args.rows or args.sparse)
    if args.rows or both:
        rows_benchmark()
    if args.sparse or both:
        sparse_benchmark(dense=not args.no_dense)


if __name__ == "__main__":
    main()
