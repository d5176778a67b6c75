"""``python -m skinfluence audit data.csv --target COLUMN``: rank a CSV's rows by self-influence.

Fits a default pipeline (numeric columns: median imputation and scaling;
other columns: most-frequent imputation and one-hot encoding) with an
influence-aware model, ranks the rows by self-influence -- the rows the model
bends towards most: likely label errors and outliers -- and prints the most
suspicious ones with their row numbers (1 = first data row after the header)
and values.
"""

import sys

import numpy as np


class AuditError(Exception):
    """A problem with the input file, reported as one line."""


def _pipeline(X, task, model):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from .linear_model import InfluenceLogisticRegression, InfluenceRidge
    from .svm import SmoothHingeSVC

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    pre = ColumnTransformer(
        [("num", numeric, make_column_selector(dtype_include=np.number)),
         ("cat", categorical, make_column_selector(dtype_exclude=np.number))],
        sparse_threshold=0.0,
    )
    if task == "regression":
        est = InfluenceRidge(alpha=1.0)
    elif model == "svm":
        est = SmoothHingeSVC(t=0.1)
    else:
        est = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)
    return make_pipeline(pre, est)


def audit(path, target, *, task="auto", model="logistic", top=10, output=None, out=print):
    """Run the audit; returns the full ranking as a DataFrame."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - optional
        raise AuditError("the audit reads CSV files with pandas: pip install pandas") from exc
    try:
        df = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise AuditError(f"no such file: {path}") from exc
    except pd.errors.EmptyDataError as exc:
        raise AuditError(f"{path} is empty") from exc
    if df.empty:
        raise AuditError(f"{path} has a header but no data rows")
    if target not in df.columns:
        raise AuditError(
            f"target column {target!r} not in {path}; columns are: {', '.join(map(str, df.columns))}"
        )
    y = df[target]
    if y.isna().any():
        raise AuditError(f"target column {target!r} has {int(y.isna().sum())} missing values")
    X = df.drop(columns=[target])
    if X.shape[1] == 0:
        raise AuditError(f"{path} has no feature columns besides {target!r}")
    numeric_target = pd.api.types.is_numeric_dtype(y)
    if task == "auto":
        task = "regression" if numeric_target and y.nunique() > 20 else "classification"
    if task == "regression" and not numeric_target:
        raise AuditError(f"target column {target!r} is not numeric, so it cannot be regressed "
                         "on; use --task classification")
    if task == "classification" and y.nunique() < 2:
        raise AuditError(f"target column {target!r} has a single class ({y.iloc[0]!r}); "
                         "an audit needs at least two")
    pipe = _pipeline(X, task, model).fit(X, y)
    si = pipe[-1].self_influence()
    order = np.argsort(si, kind="stable")
    ranking = X.iloc[order].copy()
    ranking.insert(0, "predicted", pipe.predict(X.iloc[order]))
    ranking.insert(0, target, y.iloc[order].to_numpy())
    ranking.insert(0, "self_influence", si[order])
    ranking.insert(0, "row", order + 1)
    if output:
        ranking.to_csv(output, index=False)
    kind = "regression (ridge)" if task == "regression" else f"classification ({model})"
    out(f"{path}: {len(df)} rows, {X.shape[1]} feature columns, target {target!r}, {kind}")
    out(f"The {min(top, len(df))} rows with the largest self-influence (most suspicious first):")
    out(ranking.head(top).to_string(index=False, max_cols=10))
    if output:
        out(f"full ranking written to {output}")
    return ranking


def main(args):
    try:
        audit(args.csv, args.target, task=args.task, model=args.model, top=args.top,
              output=args.output)
    except AuditError as exc:
        print(f"skinfluence audit: error: {exc}", file=sys.stderr)
        return 2
    return 0
