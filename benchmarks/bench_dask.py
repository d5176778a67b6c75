"""Fit and find the top-100 self-influential rows of 10,000,000 x 20 rows with Dask.

The rows are generated blockwise by dask (never whole in memory) on a local
``dask.distributed`` cluster of worker processes; the binary logistic model is
fitted by blockwise Newton (one pass per iteration) and the 100 most
self-influential rows are found blockwise (``most_influential``). Prints wall
times and the client process's peak memory next to the size of the data.

Run: ``python benchmarks/bench_dask.py [--rows 10000000] [--chunk 500000]``
"""

import argparse
import resource
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from skinfluence import InfluenceLogisticRegression, most_influential


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=500_000)
    args = parser.parse_args()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        rs = da.random.RandomState(0)
        X = rs.standard_normal((args.rows, args.cols), chunks=(args.chunk, args.cols))
        noise = rs.standard_normal(args.rows, chunks=args.chunk)
        y = (X[:, :3].sum(axis=1) + noise > 0).astype(int)
        t0 = time.perf_counter()
        clf = InfluenceLogisticRegression(C=1.0).fit(X, y)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx, vals = most_influential(clf, k=100)
        t_top = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        data_mb = args.rows * args.cols * 8 / 1e6
        print(f"{args.rows:,} x {args.cols} rows ({data_mb:,.0f} MB as float64) in chunks of "
              f"{args.chunk:,}, 2 worker processes")
        print(f"fit: {t_fit:.1f} s, {clf.n_iter_[0]} Newton iterations (one pass each + "
              f"line-search passes); stationarity {clf.stationarity().gradient_norm:.1e}")
        print(f"top-100 self-influential rows: {t_top:.1f} s; most: row {idx[0]} "
              f"({vals[0]:.3g})")
        print(f"client peak memory (max RSS): {peak:,.0f} MB = {peak / data_mb:.3f} x the data")


if __name__ == "__main__":
    main()
