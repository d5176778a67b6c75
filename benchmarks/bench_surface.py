"""What the notebook surface costs: explain(search) vs. the bare estimator, side by side.

One model -- a ColumnTransformer (imputation, scaling, one-hot) and an L2
logistic regression fitted by a GridSearchCV -- queried two ways on the same
rows, interleaved, medians of ``--repeats`` runs:

* "bare": the final estimator on rows already transformed by hand
  (``pipe[-1].influence_on_loss(pipe[:-1].transform(X_test), y_test)``);
* "surface": the fitted search itself, with raw DataFrame rows
  (``skinfluence.explain(search).influence_on_loss(X_test, y_test)``, a new
  Explanation every call, as each tool builds one).

Warm calls (the Hessian factorisation is cached on the estimator, as it is for
any second query). The surface adds unwrapping, the preprocessing of the test
rows and, with ``as_frame=True``, a labelled DataFrame; the ratio says what
that costs. The last rows time showing the raw training rows in a table
(``X_train=``, checked against the rows the model kept) and ``explain`` alone. Both sides must agree exactly, or the script stops.

Run: ``python benchmarks/bench_surface.py [--rows 50000] [--repeats 9]``
"""

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skinfluence as sk


def table(n, seed):
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 20))
    num[rng.random(num.shape) < 0.05] = np.nan
    df = pd.DataFrame(num, columns=[f"x{j}" for j in range(20)],
                      index=pd.Index([f"r{seed}_{i}" for i in range(n)], name="row_id"))
    for j in range(4):
        df[f"c{j}"] = rng.choice([f"level{k}" for k in range(6)], n)
    logit = np.nan_to_num(num[:, :5]).sum(axis=1) + (df["c0"] == "level1")
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=df.index)
    return df, y


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    X, y = table(args.rows, 0)
    X_test, y_test = table(args.test, 1)
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         [f"x{j}" for j in range(20)]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [f"c{j}" for j in range(4)]),
    ])
    pipe = make_pipeline(pre, sk.InfluenceLogisticRegression(solver="newton-cholesky",
                                                             tol=1e-12))
    search = GridSearchCV(pipe, {"influencelogisticregression__C": [1.0]}, cv=2).fit(X, y)
    best = search.best_estimator_
    model = best[-1]
    model.self_influence()  # warm: factor H once

    def bare():
        return model.influence_on_loss(best[:-1].transform(X_test), y_test)

    def surface():
        return sk.explain(search).influence_on_loss(X_test, y_test)

    def surface_frame():
        return sk.explain(search).influence_on_loss(X_test, y_test, as_frame=True)

    def bare_self():
        return model.self_influence()

    def surface_self():
        return sk.explain(search).self_influence(as_frame=True)

    np.testing.assert_array_equal(bare(), surface())
    np.testing.assert_array_equal(bare(), surface_frame().to_numpy())
    np.testing.assert_array_equal(bare_self(), surface_self().to_numpy())

    def table_plain():
        return sk.top_training_rows(search, k=10)

    def table_raw():  # raw rows shown: they are checked against the kept rows first
        return sk.top_training_rows(search, k=10, X_train=X)

    def explain_only():
        return sk.explain(search)

    def nothing():
        return None

    pairs = [("influence_on_loss", bare, surface), ("... as_frame=True", bare, surface_frame),
             ("self_influence(as_frame=True)", bare_self, surface_self),
             ("top_training_rows vs X_train=", table_plain, table_raw),
             ("explain(search) alone", nothing, explain_only)]
    print(f"{args.rows} training rows x {X.shape[1]} raw columns "
          f"({model.n_features_in_} after preprocessing), {args.test} test rows; "
          f"medians of {args.repeats} interleaved runs")
    print(f"{'query':32s} {'bare (ms)':>10s} {'surface (ms)':>13s} {'ratio':>7s}")
    for name, a, b in pairs:
        ta, tb = [], []
        for _ in range(args.repeats):  # interleaved
            ta.append(median_time(a, 1))
            tb.append(median_time(b, 1))
        ma, mb = np.median(ta) * 1e3, np.median(tb) * 1e3
        ratio = f"{mb / ma:7.2f}" if ma > 1e-3 else "      -"
        print(f"{name:32s} {ma:10.2f} {mb:13.2f} {ratio}")


if __name__ == "__main__":
    main()
