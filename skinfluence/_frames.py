"""Labelled pandas views of influence arrays (pandas is an optional extra).

Arrays returned by skinfluence are positional: column ``i`` is the ``i``-th
training row in fit order. With ``as_frame=True`` the same numbers come back as
pandas objects whose index / columns are the rows' own labels: the index of the
training DataFrame (or of ``y`` when it is a Series), else the positions.
"""

import numpy as np

__all__ = ["row_labels", "label_vector", "label_matrix", "param_names", "short_feature_names"]


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - optional
        raise ImportError("as_frame=True needs pandas: pip install pandas") from exc
    return pd


def index_of(*candidates, n=None):
    """The first pandas index among ``candidates`` (DataFrames, Series) of length ``n``."""
    for obj in candidates:
        index = getattr(obj, "index", None)
        if index is not None and not callable(index) and (n is None or len(index) == n):
            return index
    return None


def row_labels(index, positions):
    """Labels of training rows at ``positions`` (the positions themselves without an index)."""
    positions = np.asarray(positions, dtype=np.intp)
    if index is None:
        return positions
    return np.asarray(index[positions])


def _axis(index, n, name):
    pd = _pandas()
    if index is None:
        return pd.RangeIndex(n, name=name)
    index = pd.Index(index)
    return index.rename(index.name if index.name is not None else name)


def label_vector(values, train_index, name):
    """A Series over training rows, indexed by their labels."""
    pd = _pandas()
    return pd.Series(values, index=_axis(train_index, len(values), "train_row"), name=name)


def label_matrix(values, index, columns, index_name="test_row", columns_name="train_row"):
    """A DataFrame with labelled rows and columns (``None``: positions).

    By default rows are test rows and columns training rows, each named by
    their own labels.
    """
    pd = _pandas()
    values = np.asarray(values)
    return pd.DataFrame(values, index=_axis(index, values.shape[0], index_name),
                        columns=_axis(columns, values.shape[1], columns_name))


def param_names(feature_names, K, intercept, outputs=None):
    """Names of ``theta = (coef_.ravel(), intercept_)``: ``age``, ``intercept``,
    or ``class:age`` when there are several outputs."""
    feats = [str(f) for f in feature_names]
    if K == 1:
        return feats + (["intercept"] if intercept else [])
    outputs = [str(o) for o in (outputs if outputs is not None else range(K))]
    names = [f"{o}:{f}" for o in outputs for f in feats]
    return names + ([f"{o}:intercept" for o in outputs] if intercept else [])


def short_feature_names(names):
    """Drop ``ColumnTransformer``-style ``step__`` prefixes when the rest stays unique.

    ``num__age``, ``cat__sex_female`` become ``age``, ``sex_female`` (what
    ``verbose_feature_names_out=False`` would give); names that would collide
    keep their prefix.
    """
    names = [str(n) for n in names]
    while names and all("__" in n for n in names):
        shorter = [n.split("__", 1)[1] for n in names]
        if len(set(shorter)) < len(shorter) or not all(shorter):
            break
        names = shorter
    return np.asarray(names, dtype=object)
