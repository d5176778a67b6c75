"""Labelled pandas views of influence arrays (pandas is an optional extra).

Arrays returned by skinfluence are positional: column ``i`` is the ``i``-th
training row in fit order. With ``as_frame=True`` the same numbers come back as
pandas objects whose index / columns are the rows' own labels: the index of the
training DataFrame (or of ``y`` when it is a Series), else the positions.
"""

import warnings
from collections import Counter

import numpy as np

from ._utils import user_stacklevel

__all__ = [
    "index_of", "row_labels", "label_vector", "label_matrix", "param_names",
    "short_feature_names", "check_test_rows", "positions_of", "label_cube", "take_index",
]


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
    return _named(_raw_axis(index, n), name)


def _raw_axis(index, n):
    """The labels of ``n`` rows as a pandas Index, names as given (positions without)."""
    pd = _pandas()
    if index is None:
        return pd.RangeIndex(n)
    # pd.Index of a MultiIndex would flatten it to tuples
    return index if isinstance(index, pd.Index) else pd.Index(index)


def _axes(index, columns, m, n, index_name, columns_name):
    """Row and column axes of ``m`` and ``n`` labels, named apart: when both carry the
    same names (test and training rows from one table, index ``passenger``), the
    training rows keep them and the test rows are ``test_passenger``, so that
    ``stack().reset_index()`` works; unnamed levels are ``index_name`` /
    ``columns_name`` (``_<level>`` for a MultiIndex)."""
    rows, cols = _raw_axis(index, m), _raw_axis(columns, n)
    if list(rows.names) == list(cols.names) and any(v is not None for v in rows.names):
        if index_name == "test_row":
            rows = rows.set_names([f"test_{v}" if isinstance(v, str) else None
                                   for v in rows.names])
        else:
            rows = rows.set_names([None] * rows.nlevels)
            cols = cols.set_names([None] * cols.nlevels)
    return _named(rows, index_name), _named(cols, columns_name)


def _named(index, name):
    """``index`` with ``name`` where it has none: each unnamed level of a MultiIndex
    becomes ``<name>_<level>`` (its levels and their names are kept); ``name=None``
    leaves it as it is."""
    if name is None:
        return index
    if index.nlevels > 1:
        return index.set_names([f"{name}_{i}" if v is None else v
                                for i, v in enumerate(index.names)])
    return index.rename(index.name if index.name is not None else name)


def take_index(index, positions, name="train_row"):
    """The training rows' labels at ``positions`` as a pandas Index for a frame: the
    training index's own (a MultiIndex keeps its levels), else the positions;
    unnamed axes are called ``name``."""
    pd = _pandas()
    positions = np.asarray(positions, dtype=np.intp)
    if index is None:
        return pd.Index(positions, name=name)
    if not isinstance(index, pd.Index):
        index = pd.Index(index)
    return _named(index[positions], name)


def label_vector(values, train_index, name):
    """A Series over training rows, indexed by their labels."""
    pd = _pandas()
    # the values are a fresh result owned by the caller: wrap them, do not copy
    return pd.Series(values, index=_axis(train_index, len(values), "train_row"), name=name,
                     copy=False)


def label_matrix(values, index, columns, index_name="test_row", columns_name="train_row",
                 train_index=None):
    """A DataFrame with labelled rows and columns (``None``: positions).

    By default rows are test rows and columns training rows, each named by
    their own labels. When both axes would carry the same name (test and
    training rows from one table with an index named ``passenger``), the
    training rows keep it and the test rows are ``test_passenger``, so that
    ``stack().reset_index()`` works. With columns of another kind (groups),
    ``train_index`` names the test rows as in the tables that have both.
    """
    pd = _pandas()
    values = np.asarray(values)
    rows, cols = _axes(index, columns, values.shape[0], values.shape[1], index_name,
                       columns_name)
    if train_index is not None:
        rows = _axes(index, train_index, values.shape[0], len(train_index), index_name,
                     "train_row")[0]
    return pd.DataFrame(values, index=rows, columns=cols, copy=False)


def target_columns(y, n_outputs):
    """The column labels of a DataFrame target with ``n_outputs > 1`` columns, else None."""
    columns = getattr(y, "columns", None)
    if n_outputs > 1 and columns is not None and len(columns) == n_outputs:
        return np.asarray(columns)
    return None


def outputs_of(est):
    """``(labels, axis name)`` of a fitted model's outputs: its ``classes_`` ("class"),
    or the target's column names of a multi-output regressor fitted on a
    DataFrame ("output"); ``(None, ...)`` when they have no names."""
    classes = getattr(est, "classes_", None)
    if classes is not None:
        return classes, "class"
    return getattr(est, "target_names_", None), "output"


def _output_labels(outputs, c):
    labels, _ = outputs if outputs is not None else (None, None)
    return labels if labels is not None and len(labels) == c else None


def label_cube(values, index, columns, outputs=None):
    """``(n_test, n_train, C)`` values as a long DataFrame: one row per (test row,
    training row) pair, one column per class (or output); ``outputs`` as from
    :func:`outputs_of`."""
    pd = _pandas()
    values = np.asarray(values)
    m, n, c = values.shape
    rows, cols = _axes(index, columns, m, n, "test_row", "train_row")
    labels = _output_labels(outputs, c)
    # every (test row, training row) pair, the levels of both (MultiIndexes included)
    pairs = pd.MultiIndex.from_arrays(
        [rows.get_level_values(i)[np.repeat(np.arange(m), n)] for i in range(rows.nlevels)]
        + [cols.get_level_values(j)[np.tile(np.arange(n), m)] for j in range(cols.nlevels)],
        names=[*rows.names, *cols.names])
    return pd.DataFrame(values.reshape(m * n, c), index=pairs,
                        columns=pd.Index(range(c) if labels is None else labels,
                                         name=outputs[1] if outputs else "class"), copy=False)


def label_predictions(values, train_index, name, outputs=None):
    """Per-training-row predictions as ``cross_val_predict`` returns them, labelled: a
    Series, or a DataFrame with one column per class (or output)."""
    values = np.asarray(values)
    if values.ndim == 1:
        return label_vector(values, train_index, name)
    columns = _output_labels(outputs, values.shape[1])
    return label_matrix(values, train_index, columns, "train_row", name)


def param_names(feature_names, K, intercept, outputs=None):
    """Names of ``theta = (coef_.ravel(), intercept_)``: ``age``, ``intercept``,
    or ``class:age`` (``output:age``) when there are several outputs."""
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


def check_test_rows(X, y=None):
    """Refuse test rows that would be matched silently by position when they are labelled.

    A single row given as a pandas Series (``X.loc[label]``) is refused with
    the one-row DataFrame to pass instead; a ``y`` Series whose index holds the
    same labels as ``X``'s in another order is refused (rows are matched by
    position, as in scikit-learn, so it would pair rows with other rows' labels).
    """
    if type(X).__name__ == "Series" and hasattr(X, "to_frame"):
        raise ValueError(
            "X is a pandas Series (one row as X.loc[label]?); pass a one-row DataFrame "
            "instead, e.g. X.loc[[label]]."
        )
    if y is not None and (isinstance(y, (str, bytes, dict)) or np.ndim(y) == 0):
        hint = f" For one row pass a list, e.g. [{y!r:.30}]." if np.isscalar(y) else ""
        raise ValueError(
            f"y must hold one label per test row (array-like of shape (n_test,)); got "
            f"{type(y).__name__} {y!r:.60}.{hint}"
        )
    _check_aligned(X, y, "y")


def _check_aligned(X, other, name):
    """Refuse ``other`` (a labelled vector) whose index holds X's labels in another
    order, and warn when it holds other labels.

    Rows are matched by position, as in scikit-learn. The same labels in another
    order (``y`` shuffled apart from ``X``) would pair rows with other rows' values;
    other labels may be a slice taken apart from X's (``X[:5]``, ``y[5:10]``) or a
    pairing by position on purpose (a lag, a re-indexed frame), so they are named
    in a warning. A default ``RangeIndex`` on either side (``pd.Series(array)``,
    ``pd.DataFrame(scaler.fit_transform(X))``) labels nothing.
    """
    check_same_labels(index_of(X), index_of(other) if other is not None else None, name,
                      f"align them first, e.g. {name}.loc[X.index], or pass "
                      f"{name}.to_numpy() to pair them by position")


def check_same_labels(x_index, o_index, name, hint):
    """Refuse row labels ``o_index`` (of ``name``) that are X's ``x_index`` in another
    order, and warn when they are other labels (see :func:`_check_aligned`)."""
    if x_index is None or o_index is None or len(x_index) != len(o_index):
        return
    if _positional(x_index) or _positional(o_index) or x_index.equals(o_index):
        return
    xs, os_ = np.asarray(x_index, dtype=object), np.asarray(o_index, dtype=object)
    if getattr(x_index, "nlevels", 1) == getattr(o_index, "nlevels", 1) and \
            np.array_equal(xs, os_):  # the same labels in other dtypes (Int64, int64)
        return
    if Counter(xs.tolist()) == Counter(os_.tolist()):
        raise ValueError(
            f"{name}'s index holds the same labels as X's in another order; rows are matched "
            f"by position, so {hint}."
        )
    differ = np.flatnonzero(xs != os_)[:2]  # elementwise over the labels, no row loop
    shown = ", ".join(f"X row {xs[i]!r} with {name} row {os_[i]!r}" for i in differ)
    warnings.warn(
        f"{name}'s index does not match X's: rows are matched by position, pairing {shown}; "
        f"if that is not meant, {hint}.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _positional(index):
    """Whether ``index`` is pandas' default ``0 .. n-1`` RangeIndex (no labels of its own)."""
    return (type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1
            and index.name is None)


def check_training_rows(X, y, sample_weight=None):
    """Refuse training labels or weights whose index is X's in another order (they
    would be paired with other rows' values by position)."""
    _check_aligned(X, y, "y")
    _check_aligned(X, sample_weight, "sample_weight")


def _is_index(obj):
    """Whether ``obj`` is a pandas Index (labels by construction)."""
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "get_indexer")


def _numbers_are_ambiguous(index, n):
    """Whether the training rows carry numeric labels other than ``0 .. n-1``, so that
    a number could name a row by label or by position."""
    if index is None or getattr(index, "nlevels", 1) > 1 or index.dtype.kind not in "iuf":
        return False
    return not np.array_equal(np.asarray(index), np.arange(n))


def _label_positions(index, labels, what):
    """Positions of ``labels`` (a list) in the training rows' ``index``."""
    if not index.is_unique:
        raise ValueError(
            f"The training rows' labels are not unique, so {what} cannot be chosen by label; "
            "pass positions (a numpy array, fit order) or a boolean mask."
        )
    pos = index.get_indexer(labels) if labels else np.empty(0, dtype=np.intp)
    if np.any(pos < 0):
        missing = [v for v, p in zip(labels, pos) if p < 0][:3]
        raise ValueError(
            f"{what.capitalize()} {missing} are not labels of training rows; pass labels "
            "from the training index, positions or a mask."
        )
    return np.asarray(pos, dtype=np.intp)


def positions_of(rows, index, n, what="rows"):
    """Positions (fit order) of training rows given as positions, labels or a boolean mask.

    ``rows`` may be integer positions ``0 .. n-1``; a boolean mask of length
    ``n`` (a pandas Series is aligned on its index with the training labels);
    or, when the training rows carry labels (``index``), those labels.

    When those labels are numbers other than ``0 .. n-1`` (a DataFrame split by
    ``train_test_split``), a number could be either: a pandas Index holds labels
    (``result.index``), a numpy array holds positions in fit order (as the
    library's arrays are: ``np.argsort(model.self_influence())``), and anything
    else -- a list, a Series, a scalar -- is refused.
    """
    if hasattr(rows, "index") and hasattr(rows, "dtype") and not callable(rows.index) \
            and rows.dtype == bool:
        if index is not None:
            if not rows.index.equals(index):
                if not index.is_unique or len(rows) != len(index) or not \
                        rows.index.sort_values().equals(index.sort_values()):
                    raise ValueError(
                        f"The boolean mask of {what} is indexed by other labels than the "
                        "training rows (or they are not unique); build it from the "
                        "training DataFrame, or pass a numpy mask in fit order."
                    )
                rows = rows.reindex(index)
        rows = rows.to_numpy()
    if index is not None and getattr(index, "nlevels", 1) > 1 and not isinstance(
            rows, np.ndarray) and not _is_index(rows):
        rows = list(rows) if isinstance(rows, (list, tuple)) else [rows]
        if all(isinstance(r, tuple) for r in rows):  # labels of a MultiIndex
            return _label_positions(index, rows, what)
    is_index = _is_index(rows)
    if _numbers_are_ambiguous(index, n) and not isinstance(rows, np.ndarray) \
            and not is_index and np.asarray(rows).dtype.kind in "iuf":
        shown = np.asarray(rows).ravel()[:3].tolist()
        raise ValueError(
            f"The {what} {shown} could be labels or positions: the training rows' index "
            f"holds numbers other than 0 .. {n - 1}. Pass labels as a pandas Index, e.g. "
            "pd.Index([...]) or a result's .index, or positions (fit order) as a numpy "
            "array, e.g. np.array([...])."
        )
    if is_index and index is not None and rows.dtype != bool and (
            getattr(index, "nlevels", 1) > 1 or index.dtype.kind in "iuf"):
        return _label_positions(index, list(rows), what)
    g = np.asarray(rows)
    if g.ndim > 1:
        raise ValueError(f"A selection of {what} is one-dimensional (positions, labels or a "
                         f"mask); got shape {g.shape}.")
    if g.dtype == bool:
        if g.ndim != 1 or len(g) != n:
            raise ValueError(f"A boolean mask of {what} must have one entry per training row "
                             f"({n}); got shape {g.shape}.")
        return np.flatnonzero(g)
    g = g.ravel()
    if g.size and g.dtype.kind not in "iu":
        if index is None:
            raise ValueError(
                f"{what.capitalize()} are integer positions (0 .. {n - 1}) or boolean masks "
                f"(the training rows carry no labels); got values of dtype {g.dtype}."
            )
        return _label_positions(index, list(rows) if isinstance(rows, (list, tuple))
                                else g.tolist(), what)
    g = g.astype(np.intp)
    if g.size and (g.min() < 0 or g.max() >= n):
        raise ValueError(f"Positions of {what} must lie in 0 .. {n - 1}; got "
                         f"{g.min()} .. {g.max()}.")
    return g
