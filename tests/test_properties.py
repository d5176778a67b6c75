"""Property-based tests (hypothesis): kinds of input x entry points.

Every generated case ends in one of two ways:

- a *documented* exception -- ``ValueError`` (which includes scikit-learn's
  ``InvalidParameterError``, numpy's ``LinAlgError`` and so
  :class:`skinfluence.SingularHessianError`), ``TypeError``,
  :class:`skinfluence.InfluenceNotDefinedError`, ``MemoryError`` or
  ``sklearn.exceptions.NotFittedError`` -- whose message says something (at
  least 15 characters, not a bare numpy / Python internal message such as
  "'<' not supported between instances of ..." or "array must not contain infs
  or NaNs"), or
- a finite answer equal to the dense float64 reference: the same estimator
  fitted on plain float64 numpy arrays holding the same values, queried with
  plain float64 numpy arrays.

Never an ``IndexError`` / ``KeyError`` / ``AttributeError`` / ...; never a NaN or
infinity in an answer; never a modified input (every argument is compared with a
deep copy taken before the call).

The base problems are small and fitted tightly: 40 training and 8 test rows, the
first 5 features (standardised) of breast_cancer (binary), wine (3 classes) and
diabetes (regression), with ``InfluenceLogisticRegression(solver="newton-cholesky",
tol=1e-12)`` (binary, 3 classes), ``SmoothHingeSVC(t=0.5)`` (binary, 3 classes) and
``InfluenceRidge(alpha=1, tol=1e-12)``; some with string class labels.

Properties (the number of cases each ran is printed by the last test of this file,
``test_zz_number_of_cases``, even under ``-q``):

1. ``test_every_input_kind_gives_the_dense_float64_answer`` -- fit and query with
   float64 / float32 / integer arrays, lists, DataFrames (string index, with and
   without column names), scipy.sparse csr / csc / coo / lil / csr_array,
   Fortran-ordered and non-contiguous arrays; labels as ints, shifted ints, floats,
   strings, object strings, bools, pandas Categoricals, lists and Series; weights as
   lists, arrays and Series. float32 training data is fitted in float32 by
   scikit-learn (``coef_`` identical to ``LogisticRegression``/``Ridge`` on float32),
   so it is compared with the reference fitted on the float32-rounded values with a
   looser tolerance (1e-4 relative to the largest entry instead of 1e-6).
2. ``test_corrupted_test_rows`` -- NaN / inf / huge values, wrong shapes, empty,
   3-D, 1-D, wrong or missing labels ... given to every entry point that takes
   test rows.
3. ``test_corrupted_training_data`` -- the same for ``fit`` (and the queries after
   it), plus sample weights and hyperparameters given at construction.
4. ``test_bad_parameters_after_fit`` -- ``set_params`` after fit (damping, solver,
   C, alpha, t, l1_ratio ...), bad ``kind``, ``k``, ``which``, ``groups``, and
   unfitted estimators.

Decisions on corruptions that may legitimately be accepted (each documented where
it is generated): an empty ``X_test`` may return an answer with 0 test rows (or
all-zero totals) instead of raising; a huge but finite value (1e200, 1e308) may be
accepted when the answer stays finite; ``y_test`` as an ``(n, 1)`` column is
accepted as the 1-D labels; ``k`` larger than the number of training rows returns
every row; a negative sample weight may be accepted (scikit-learn accepts it) when
the answers stay finite; ``tol < 0`` set after fit may be ignored by the influence
methods (it plays no part in them).

Known bugs of the package are kept as ``xfail(strict=True)`` cases (see ``_BUGS``).
"""

import collections
import copy
import functools
import math
import re
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("hypothesis")

import scipy.sparse as sp  # noqa: E402
from hypothesis import HealthCheck, Phase, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skinfluence  # noqa: E402
from skinfluence import (  # noqa: E402
    InfluenceLogisticRegression,
    InfluenceNotDefinedError,
    InfluenceRidge,
    SmoothHingeSVC,
    StationarityWarning,
)

# ----------------------------------------------------------------- settings
#: Deterministic and bounded: derandomized, no example database, no shrinking (a
#: failure is reported as first found, so an xfail case stops there).
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
    print_blob=False,
)
N_INPUT_KINDS = 250  # examples of property 1 (each fits a model)
N_TEST_CORRUPTION = 12  # examples per (problem, corruption) of property 2
N_TRAIN_CORRUPTION = 8  # examples per (problem, corruption) of property 3 (each fits)
N_PARAMETERS = 10  # examples per (problem, bad parameter) of property 4

#: examples run per property (filled as they run; printed by the last test)
CASES = collections.Counter()

N_TRAIN, N_TEST, N_FEATURES = 40, 8, 5

# ------------------------------------------------------------------ problems


class Problem:
    """A fitted base problem: data, estimator factory and the reference fit."""

    def __init__(self, name, loader, make, task, label_names=None):
        self.name, self.make, self.task = name, make, task
        X, y = loader(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))[: N_TRAIN + N_TEST]
        X = StandardScaler().fit_transform(X[order][:, :N_FEATURES])
        y = y[order]
        if label_names is not None:  # order-preserving: classes_ keep their order
            y = np.asarray(label_names)[y]
        self.X, self.X_test = X[:N_TRAIN], X[N_TRAIN:]
        self.y, self.y_test = y[:N_TRAIN], y[N_TRAIN:]
        self.classes = np.unique(self.y) if task == "classification" else None
        # weights exact in every dtype
        self.weights = np.random.default_rng(1).choice([0.5, 1.0, 1.5, 2.0], N_TRAIN)

    @property
    def classifier(self):
        return self.task == "classification"

    def codes(self, y):
        return np.searchsorted(self.classes, y)

    def __repr__(self):
        return self.name


PROBLEMS = {
    p.name: p
    for p in [
        Problem("logistic-binary", load_breast_cancer,
                lambda: InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12),
                "classification"),
        Problem("logistic-3class", load_wine,
                lambda: InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12),
                "classification", ["class_0", "class_1", "class_2"]),
        Problem("svm-binary", load_breast_cancer, lambda: SmoothHingeSVC(t=0.5),
                "classification", ["malignant", "normal"]),
        Problem("svm-3class", load_wine, lambda: SmoothHingeSVC(t=0.5), "classification"),
        Problem("ridge", load_diabetes, lambda: InfluenceRidge(alpha=1.0, tol=1e-12),
                "regression"),
    ]
}


# ------------------------------------------------------------ value variants
#: dtypes of the training / test values; float32 and integer variants change the
#: values (rounding), and the reference is fitted on the changed values as float64
VALUE_VARIANTS = {"float64": np.float64, "float32": np.float32, "int64": np.int64,
                  "int32": np.int32, "int8": np.int8}


def _value_key(variant):
    return "int" if variant.startswith("int") else variant


def _values(X, variant):
    """The values a variant keeps, as float64."""
    key = _value_key(variant)
    if key == "float32":
        return X.astype(np.float32).astype(np.float64)
    if key == "int":
        return np.round(4.0 * X)  # |values| <= ~25: exact in int8
    return X


def _typed(X, variant):
    return _values(X, variant).astype(VALUE_VARIANTS[variant])


@functools.lru_cache(maxsize=None)
def reference_model(problem, train_key="float64", weighted=False):
    """The dense float64 reference: the estimator fitted on plain float64 arrays."""
    p = PROBLEMS[problem]
    X = _values(p.X, train_key)
    return p.make().fit(X, p.y, sample_weight=p.weights.copy() if weighted else None)


@functools.lru_cache(maxsize=None)
def reference_answers(problem, train_key, weighted, test_key):
    p = PROBLEMS[problem]
    m = reference_model(problem, train_key, weighted)
    Xt = _values(p.X_test, test_key)
    return {
        "upweight": m.influence_on_loss(Xt, p.y_test),
        "remove": m.influence_on_loss(Xt, p.y_test, kind="remove"),
        "newton": m.influence_on_loss(Xt, p.y_test, kind="newton"),
        "self_influence": m.self_influence(),
        "influence_on_params": m.influence_on_params(),
        "loss_values": m.loss_values(Xt, p.y_test),
    }


# ------------------------------------------------------------ input kinds
X_KINDS = ["ndarray", "fortran", "strided", "list", "dataframe", "dataframe-no-names",
           "csr", "csc", "coo", "lil", "csr_array"]
FEATURE_NAMES = [f"f{j}" for j in range(N_FEATURES)]


def as_kind(X, kind, prefix):
    """``X`` (an ndarray of some dtype) in container ``kind``; same values."""
    index = [f"{prefix}{i}" for i in range(X.shape[0])]
    if kind == "ndarray":
        return X.copy()
    if kind == "fortran":
        return np.asfortranarray(X)
    if kind == "strided":  # a non-contiguous view (every other row and column)
        big = np.zeros((2 * X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
        big[::2, 1::2] = X
        return big[::2, 1::2]
    if kind == "list":
        return X.tolist()
    if kind == "dataframe":
        return pd.DataFrame(X, index=index, columns=FEATURE_NAMES)
    if kind == "dataframe-no-names":
        return pd.DataFrame(X, index=index)
    if kind == "csr_array":
        return sp.csr_array(X)
    return sp.csr_matrix(X).asformat(kind)


def label_kinds(problem):
    if not problem.classifier:
        return ["float64", "int64", "float32"]
    kinds = ["as-is", "int-shifted", "float", "str", "object", "categorical"]
    return kinds + (["bool"] if len(problem.classes) == 2 else [])


def as_labels(problem, y, kind):
    """Labels / targets in another representation that keeps the classes' order."""
    if not problem.classifier:
        return y.astype({"float64": np.float64, "int64": np.int64, "float32": np.float32}[kind])
    codes = problem.codes(y)
    if kind == "as-is":
        return y.copy()
    if kind == "int-shifted":
        return 7 * codes - 3
    if kind == "float":
        return codes.astype(float)
    if kind == "bool":
        return codes.astype(bool)
    names = np.array([f"label_{c}" for c in range(len(problem.classes))])
    if kind == "str":
        return names[codes]
    if kind == "object":
        return names[codes].astype(object)
    return pd.Categorical(names[codes])  # categorical


def as_label_container(y, kind, index):
    if kind == "ndarray":
        return np.asarray(y)
    if kind == "list":
        return np.asarray(y).tolist()
    return pd.Series(y, index=index)  # series


# -------------------------------------------------------------- comparisons
def _same(a, b):
    """Deep equality of inputs (NaN equal to NaN; containers, dtypes and order kept)."""
    if type(a) is not type(b):
        return False
    if sp.issparse(a):
        if a.format != b.format or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.format in ("csr", "csc") and not (
                np.array_equal(a.indices, b.indices) and np.array_equal(a.indptr, b.indptr)):
            return False
        return np.array_equal(a.toarray(), b.toarray(), equal_nan=a.dtype.kind == "f")
    if isinstance(a, (pd.DataFrame, pd.Series)):
        if isinstance(a, pd.DataFrame) and not (
                a.columns.equals(b.columns) and list(a.dtypes) == list(b.dtypes)):
            return False
        return a.index.equals(b.index) and a.shape == b.shape and a.equals(b) and (
            isinstance(a, pd.DataFrame) or a.dtype == b.dtype)
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype == object:
            return _same(a.tolist(), b.tolist())
        return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a is b or a == b


def _numbers(out):
    """The numbers of any answer, as a float array."""
    if isinstance(out, tuple):
        return np.concatenate([np.asarray(v, dtype=float).ravel() for v in out])
    if isinstance(out, pd.DataFrame):
        if "change_if_removed" in out:
            return out["change_if_removed"].to_numpy(dtype=float)
        if "self_influence" in out:
            return out["self_influence"].to_numpy(dtype=float)
        return out.to_numpy(dtype=float)
    if isinstance(out, pd.Series):
        return out.to_numpy(dtype=float)
    return np.asarray(out, dtype=float)


def assert_reference(out, ref, rtol=1e-6, what="answer"):
    a, b = _numbers(out), _numbers(ref)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, reference {b.shape}"
    assert np.all(np.isfinite(a)), f"{what}: {np.sum(~np.isfinite(a))} non-finite entries"
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2 * scale + 1e-300,
                               err_msg=what)


DOCUMENTED = (ValueError, TypeError, InfluenceNotDefinedError, MemoryError, NotFittedError)
#: messages of numpy / scipy / Python internals that say nothing to the user
BARE = re.compile(
    r"not supported between instances|object is not (iterable|subscriptable|callable)"
    r"|has no attribute|index -?\d+ is out of bounds|index out of range"
    r"|array must not contain infs or NaNs|^singular matrix$|ufunc '"
    r"|could not be broadcast|unhashable type|invalid value encountered|division by zero"
    r"|positional argument|unexpected keyword|cannot reshape array|must be real number"
    r"|object cannot be interpreted",
    re.IGNORECASE,
)


def assert_clear_error(exc, what="call"):
    assert isinstance(exc, DOCUMENTED), (
        f"{what} raised an undocumented {type(exc).__name__}: {exc}")
    msg = str(exc).strip()
    assert len(msg) >= 15 and not BARE.search(msg), (
        f"{what} raised {type(exc).__name__} with an unhelpful message: {msg!r}")


class Outcome:
    """What a call did: ``value`` or ``error`` (warnings recorded, never raised)."""

    def __init__(self, fn, *args, **kwargs):
        self.value = self.error = None
        with warnings.catch_warnings(record=True) as self.warnings:
            warnings.simplefilter("always")
            try:
                self.value = fn(*args, **kwargs)
            except AssertionError:
                raise
            except Exception as exc:  # judged by the property, not here
                self.error = exc

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        return f"Outcome(error={self.error!r})" if self.error else "Outcome(ok)"


def checked_call(fn, *args, **kwargs):
    """Call ``fn`` and check that no argument was modified."""
    before = copy.deepcopy((args, kwargs))
    out = Outcome(fn, *args, **kwargs)
    assert _same((args, kwargs), before), f"{getattr(fn, '__name__', fn)} modified its input"
    return out


def judge(out, ref=None, *, must_raise=False, rtol=1e-6, what="call", check=None):
    """The property: a clear documented error, or a finite answer equal to ``ref``.

    ``ref`` is the Outcome of the same call on the dense float64 reference input
    (None: no reference; only finiteness is checked).
    """
    if not out.ok:
        assert_clear_error(out.error, what)
        return
    assert not must_raise, f"{what} accepted an input it must refuse; returned {out.value!r}"
    nums = _numbers(out.value)
    assert np.all(np.isfinite(nums)), f"{what} returned non-finite values: {nums!r}"
    if check is not None:
        check(out.value)
    if ref is not None:
        assert ref.ok, f"{what} answered, but the dense float64 reference raised {ref.error!r}"
        assert_reference(out.value, ref.value, rtol, what)


# ================================================================ property 1
@settings(max_examples=N_INPUT_KINDS, **SETTINGS)
@given(data=st.data())
def test_every_input_kind_gives_the_dense_float64_answer(data):
    CASES["1 input kinds"] += 1
    problem = PROBLEMS[data.draw(st.sampled_from(sorted(PROBLEMS)), "problem")]
    x_kind = data.draw(st.sampled_from(X_KINDS), "X kind")
    x_var = data.draw(st.sampled_from(sorted(VALUE_VARIANTS)), "X values")
    t_kind = data.draw(st.sampled_from(X_KINDS), "X_test kind")
    t_var = data.draw(st.sampled_from(sorted(VALUE_VARIANTS)), "X_test values")
    l_kind = data.draw(st.sampled_from(label_kinds(problem)), "labels")
    y_kind = data.draw(st.sampled_from(["ndarray", "list", "series"]), "y container")
    w_kind = data.draw(st.sampled_from([None, "ndarray", "list", "series", "float32"]),
                       "sample_weight")
    if l_kind == "categorical" and y_kind == "ndarray":
        y_kind = "series"

    X = as_kind(_typed(problem.X, x_var), x_kind, "r")
    X_test = as_kind(_typed(problem.X_test, t_var), t_kind, "t")
    train_index = [f"r{i}" for i in range(N_TRAIN)] if x_kind.startswith("dataframe") \
        else [f"y{i}" for i in range(N_TRAIN)]
    test_index = [f"t{i}" for i in range(N_TEST)] if t_kind.startswith("dataframe") \
        else [f"u{i}" for i in range(N_TEST)]
    y = as_label_container(as_labels(problem, problem.y, l_kind), y_kind, train_index)
    y_test = as_label_container(as_labels(problem, problem.y_test, l_kind), y_kind,
                                test_index)
    sw = None
    if w_kind == "float32":
        sw = problem.weights.astype(np.float32)
    elif w_kind is not None:
        sw = as_label_container(problem.weights.copy(), w_kind, train_index)

    ref = reference_answers(problem.name, _value_key(x_var), sw is not None, _value_key(t_var))
    rtol = 1e-4 if _value_key(x_var) == "float32" else 1e-6

    fit = checked_call(problem.make().fit, X, y, sample_weight=sw)
    assert fit.ok, f"fit refused a valid input: {fit.error!r}"
    est = fit.value
    queries = {
        "upweight": lambda: est.influence_on_loss(X_test, y_test),
        "remove": lambda: est.influence_on_loss(X_test, y_test, kind="remove"),
        "newton": lambda: est.influence_on_loss(X_test, y_test, kind="newton"),
        "self_influence": lambda: est.self_influence(),
        "influence_on_params": lambda: est.influence_on_params(),
        "loss_values": lambda: est.loss_values(X_test, y_test),
    }
    for name, query in queries.items():
        out = checked_call(query)
        assert out.ok, f"{name} refused a valid input: {out.error!r}"
        assert_reference(out.value, ref[name], rtol, name)
        # a tight fit of any input kind is stationary (float32 fits too, so far)
        assert not [w for w in out.warnings if issubclass(w.category, StationarityWarning)]

    # the same numbers through explain() and labelled by the rows' own labels
    ex = skinfluence.explain(est)
    assert_reference(checked_call(ex.influence_on_loss, X_test, y_test).value,
                     ref["upweight"], rtol, "explain().influence_on_loss")
    frame = checked_call(est.influence_on_loss, X_test, y_test, kind="remove",
                         as_frame=True).value
    assert_reference(frame, ref["remove"], rtol, "as_frame")
    expected_train = (list(X.index) if isinstance(X, pd.DataFrame) else
                      list(y.index) if isinstance(y, pd.Series) else list(range(N_TRAIN)))
    expected_test = (list(X_test.index) if isinstance(X_test, pd.DataFrame) else
                     list(y_test.index) if isinstance(y_test, pd.Series) else
                     list(range(N_TEST)))
    assert list(frame.columns) == expected_train
    assert list(frame.index) == expected_test
    assert list(est.self_influence(as_frame=True).index) == expected_train

    # groups of training rows by positions, by their labels, and by a boolean Series
    # aligned on the labels (given in another order)
    rows = [1, 4, 9]
    groups = {"positions": rows}
    if expected_train != list(range(N_TRAIN)):
        groups["labels"] = [expected_train[r] for r in rows]
        mask = pd.Series(np.isin(np.arange(N_TRAIN), rows), index=expected_train)
        groups["mask"] = mask.iloc[::-1]
    out = checked_call(est.group_influence_on_loss, X_test, y_test, groups)
    assert out.ok, f"group_influence_on_loss refused valid groups: {out.error!r}"
    expected = ref["remove"][:, rows].sum(axis=1)
    assert_reference(out.value, np.column_stack([expected] * len(groups)), rtol,
                     "group_influence_on_loss")

    # influence does not change when the caller edits the arrays passed to fit
    if isinstance(X, pd.DataFrame):
        X.iloc[:, :] = 0
    elif sp.issparse(X):
        X.data[:] = 0
    elif isinstance(X, np.ndarray):
        X[...] = 0
    assert_reference(est.self_influence(), ref["self_influence"], rtol,
                     "self_influence after the caller edited X")


# ================================================================ property 2
TEST_ENTRIES = {
    "influence_on_loss": lambda m, X, y: m.influence_on_loss(X, y),
    "influence_on_loss(remove)": lambda m, X, y: m.influence_on_loss(X, y, kind="remove"),
    "influence_on_loss(newton)": lambda m, X, y: m.influence_on_loss(X, y, kind="newton"),
    "influence_on_loss(as_frame)": lambda m, X, y: m.influence_on_loss(X, y, as_frame=True),
    "loss_values": lambda m, X, y: m.loss_values(X, y),
    "loss_gradients": lambda m, X, y: m.loss_gradients(X, y),
    "perturbation_influence": lambda m, X, y: m.perturbation_influence(X, y),
    "group_influence_on_loss": lambda m, X, y: m.group_influence_on_loss(
        X, y, [[0, 3], [5, 7, 11]]),
    "group_influence_on_loss(newton)": lambda m, X, y: m.group_influence_on_loss(
        X, y, {"a": [0, 3], "b": np.arange(N_TRAIN) % 5 == 1}, kind="newton"),
    "explain().influence_on_loss": lambda m, X, y: skinfluence.explain(m).influence_on_loss(
        X, y, kind="remove"),
    "explain().loss_values": lambda m, X, y: skinfluence.explain(m).loss_values(X, y),
    "aggregate_influence": lambda m, X, y: skinfluence.aggregate_influence(m, X, y),
    "top_training_rows": lambda m, X, y: skinfluence.top_training_rows(m, X, y, k=3),
    "most_influential": lambda m, X, y: skinfluence.most_influential(m, X, y, k=3),
}
#: entry points whose answer has one row per test row
PER_TEST_ROW = [e for e in TEST_ENTRIES if not e.startswith(("aggregate", "top", "most"))]

TEST_CORRUPTIONS = [
    "nonfinite-X", "huge-X", "large-X", "strings-in-X", "wrong-columns", "empty", "3-D", "1-D",
    "series-row", "y-wrong-length", "y-unseen-label", "y-unseen-label-other-type",
    "y-missing-numeric", "y-missing-object", "y-none",
    "y-column", "y-two-columns", "y-permuted-index",
]


def _container(data, X, kinds=("ndarray", "dataframe", "csr", "list")):
    kind = data.draw(st.sampled_from(kinds), "container")
    return as_kind(X, kind, "t") if X.dtype != object else (
        pd.DataFrame(X, index=[f"t{i}" for i in range(len(X))]) if kind == "dataframe"
        else X)


def corrupt_test(data, problem, corruption):
    """Corrupted ``(X, y)``, and the dense float64 ``(X, y)`` it means (None: refuse)."""
    X, y = problem.X_test.copy(), problem.y_test.copy()
    i = data.draw(st.integers(0, N_TEST - 1), "row")
    j = data.draw(st.integers(0, N_FEATURES - 1), "column")
    if corruption in ("nonfinite-X", "huge-X", "large-X"):
        values = {"nonfinite-X": [np.nan, np.inf, -np.inf], "huge-X": [1e308, -1e308],
                  "large-X": [1e200, -1e200, 1e100, -1e50]}[corruption]
        X[i, j] = data.draw(st.sampled_from(values), "value")
        # large but finite values may be accepted: then the answer must stay finite
        return _container(data, X), y, (None if corruption == "nonfinite-X" else (X, y))
    if corruption == "strings-in-X":
        Xo = X.astype(object)
        Xo[i, j] = data.draw(st.sampled_from(["abc", "", "1,5", None]), "value")
        return _container(data, Xo, ("ndarray", "dataframe")), y, None
    if corruption == "wrong-columns":
        d = data.draw(st.sampled_from([0, 1, 2, 4, 6, 9]), "n_columns")
        Xd = np.hstack([X, X])[:, :d] if d else X[:, :0]
        return _container(data, Xd, ("ndarray", "csr", "list")), y, None
    if corruption == "empty":
        # an empty X_test may return an answer with 0 test rows: see _empty_answer
        return _container(data, X[:0], ("ndarray", "dataframe", "csr")), y[:0], "empty"
    if corruption == "3-D":
        return X.reshape(data.draw(st.sampled_from([(1, N_TEST, N_FEATURES),
                                                    (N_TEST, N_FEATURES, 1)]))), y, None
    if corruption == "1-D":
        # one row as a 1-D array: refused (scikit-learn) or read as that one row
        return X[i], y[i:i + 1], (X[i:i + 1], y[i:i + 1])
    if corruption == "series-row":
        frame = pd.DataFrame(X, index=[f"t{k}" for k in range(N_TEST)])
        return frame.iloc[i], y[i:i + 1], None
    if corruption == "y-wrong-length":
        k = data.draw(st.sampled_from([0, 1, N_TEST - 1, N_TEST + 1, 2 * N_TEST]), "len")
        yk = np.resize(y, k)
        return _container(data, X), data.draw(st.sampled_from([yk, list(yk)])), None
    if corruption == "y-unseen-label":  # of the classes' own type
        if problem.classifier:
            bad = data.draw(st.sampled_from(
                ["zzz", "class_9", ""] if problem.y.dtype.kind in "US"
                else [99, -1, 0.5, 2.5]), "label")
        else:
            bad = data.draw(st.sampled_from(["zzz", "", "1,5"]), "target")
        ym = y.astype(object) if isinstance(bad, str) or y.dtype.kind in "US" else \
            y.astype(float)
        ym[i] = bad
        return _container(data, X), data.draw(st.sampled_from([ym, ym.tolist()])), None
    if corruption == "y-unseen-label-other-type":  # a string among ints, a number among strings
        bad = data.draw(st.sampled_from(
            [99, 0, 1.5] if problem.y.dtype.kind in "US" else ["zzz", "0", "1"]), "label")
        ym = y.astype(object)
        ym[i] = bad
        return _container(data, X), data.draw(st.sampled_from([ym, pd.Series(ym)])), None
    if corruption == "y-missing-numeric":  # NaN among numbers
        form = data.draw(st.sampled_from(["float-nan", "float-inf", "nullable", "series-nan"]),
                         "missing")
        if form == "nullable":
            ym = pd.array(y.tolist(), dtype="Int64" if y.dtype.kind in "iu" else "Float64")
            ym[i] = pd.NA
        else:
            ym = y.astype(float)
            ym[i] = np.inf if form == "float-inf" else np.nan
            ym = pd.Series(ym) if form == "series-nan" else ym
        return _container(data, X), ym, None
    if corruption == "y-missing-object":  # None / NaN in an object array (a pandas column)
        ym = y.astype(object)
        ym[i] = data.draw(st.sampled_from([None, np.nan]), "missing")
        return _container(data, X), data.draw(st.sampled_from([ym, pd.Series(ym)])), None
    if corruption == "y-none":
        return _container(data, X), None, None
    if corruption == "y-column":
        return _container(data, X), y[:, None], (X, y)
    if corruption == "y-two-columns":
        return _container(data, X), np.column_stack([y, y]), None
    if corruption == "y-permuted-index":
        index = [f"t{k}" for k in range(N_TEST)]
        perm = np.roll(np.arange(N_TEST), 1 + i % (N_TEST - 1))
        return (pd.DataFrame(X, index=index),
                pd.Series(y[perm], index=np.asarray(index)[perm]), None)
    raise AssertionError(corruption)


def _empty_answer(entry):
    def check(out):
        nums = _numbers(out)
        if entry in PER_TEST_ROW:
            assert np.shape(out)[0] == 0, f"{entry}: {np.shape(out)} for 0 test rows"
        else:  # totals over no test rows
            assert np.all(nums[-min(3, nums.size):] == 0) if entry == "most_influential" \
                else np.all(nums == 0), f"{entry}: non-zero totals over 0 test rows"
    return check


#: known package bugs: (property, problem or None for all, corruption) -> reason
_BUGS = {}  # every bug this suite found is fixed; add (property, problem, corruption): reason


def _test_applicable(problem, corruption):
    if corruption == "y-unseen-label-other-type":
        return problem.classifier
    if corruption == "y-missing-numeric":
        return problem.y.dtype.kind not in "US"
    return True


def _cases(prop, problems, corruptions, applicable=lambda p, c: True):
    out = []
    for c in corruptions:
        for p in problems:
            if not applicable(PROBLEMS[p], c):
                continue
            reason = _BUGS.get((prop, p, c)) or _BUGS.get((prop, None, c)) or (
                _BUGS.get((prop, "classifiers", c)) if PROBLEMS[p].classifier else None)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(p, c, marks=marks, id=f"{p}-{c}"))
    return out


def _unchanged_model(problem, before):
    """The cached base model is not changed by any query."""
    m = reference_model(problem)
    assert np.array_equal(np.asarray(m.coef_), before[0])
    assert np.array_equal(np.asarray(m.intercept_), before[1])


@pytest.mark.parametrize("problem,corruption", _cases("test", PROBLEMS, TEST_CORRUPTIONS,
                                                            _test_applicable))
@settings(max_examples=N_TEST_CORRUPTION, **SETTINGS)
@given(data=st.data())
def test_corrupted_test_rows(problem, corruption, data):
    CASES["2 corrupted test rows"] += 1
    p = PROBLEMS[problem]
    model = reference_model(problem)
    before = (np.array(model.coef_, copy=True), np.array(model.intercept_, copy=True))
    entry = data.draw(st.sampled_from(sorted(TEST_ENTRIES)), "entry point")
    X, y, meaning = corrupt_test(data, p, corruption)
    note(f"X={X!r}\ny={y!r}")
    out = checked_call(lambda X, y: TEST_ENTRIES[entry](model, X, y), X, y)
    what = f"{entry} with {corruption}"
    if meaning is None:
        judge(out, must_raise=True, what=what)
    elif isinstance(meaning, str):  # empty
        judge(out, what=what, check=_empty_answer(entry))
    else:
        ref = Outcome(TEST_ENTRIES[entry], model, np.asarray(meaning[0], dtype=float),
                      meaning[1])
        judge(out, ref, what=what)
    _unchanged_model(problem, before)


# ================================================================ property 3
TRAIN_CORRUPTIONS = [
    "nonfinite-X", "huge-X", "strings-in-X", "3-D", "empty", "one-row", "y-wrong-length",
    "y-missing", "y-none-label", "single-class", "sw-negative", "sw-nonfinite",
    "sw-wrong-length", "sw-2-D", "sw-all-zero", "bad-hyperparameter",
]
TRAIN_PROBLEMS = ["logistic-binary", "logistic-3class", "svm-binary", "ridge"]


def _bad_hyperparameters(problem):
    if problem.name.startswith("logistic"):
        return {"C": [0.0, -1.0, np.nan, -np.inf, "1"], "tol": [-1e-3, np.nan],
                "damping": [-1.0, np.nan, np.inf, "x"], "influence_solver": ["nope", 3],
                "max_iter": [-5]}
    if problem.name.startswith("svm"):
        return {"C": [0.0, -1.0, np.nan], "t": [0.0, -0.5, np.nan],
                "influence_t": [0.0, -1.0], "tol": [-1e-3], "damping": [-1.0, np.inf],
                "influence_solver": ["nope", None], "max_iter": [0]}
    return {"alpha": [-1.0, np.nan, -np.inf, "a"], "tol": [-1e-3],
            "damping": [-1.0, np.nan, np.inf], "influence_solver": ["nope"]}


def corrupt_train(data, problem, corruption):
    """Corrupted ``(X, y, sample_weight, params)`` and the dense float64 meaning
    (``None``: must be refused, at fit or at every query)."""
    X, y = problem.X.copy(), problem.y.copy()
    i = data.draw(st.integers(0, N_TRAIN - 1), "row")
    j = data.draw(st.integers(0, N_FEATURES - 1), "column")
    kinds = ("ndarray", "dataframe", "csr", "list", "fortran")
    if corruption in ("nonfinite-X", "huge-X"):
        values = [np.nan, np.inf, -np.inf] if corruption == "nonfinite-X" else \
            [1e308, -1e308, 1e200, -1e200]
        X[i, j] = data.draw(st.sampled_from(values), "value")
        meaning = None if corruption == "nonfinite-X" else (X, y, None)
        return _container(data, X, kinds), y, None, {}, meaning
    if corruption == "strings-in-X":
        Xo = X.astype(object)
        Xo[i, j] = data.draw(st.sampled_from(["abc", "", None]), "value")
        return _container(data, Xo, ("ndarray", "dataframe")), y, None, {}, None
    if corruption == "3-D":
        return X[None], y, None, {}, None
    if corruption == "empty":
        return _container(data, X[:0], ("ndarray", "dataframe", "csr")), y[:0], None, {}, None
    if corruption == "one-row":  # one row cannot hold two classes; a regression may fit
        return X[:1], y[:1], None, {}, (None if problem.classifier else (X[:1], y[:1], None))
    if corruption == "y-wrong-length":
        k = data.draw(st.sampled_from([0, 1, N_TRAIN - 1, N_TRAIN + 1]), "len")
        return _container(data, X, kinds), np.resize(y, k), None, {}, None
    if corruption == "y-missing":  # NaN / inf among numbers, NaN among strings
        if y.dtype.kind in "US":
            ym = y.astype(object)
            ym[i] = np.nan
        else:
            ym = y.astype(float)
            ym[i] = data.draw(st.sampled_from([np.nan, np.inf]), "missing")
        return _container(data, X, kinds), data.draw(st.sampled_from([ym, pd.Series(ym)])), \
            None, {}, None
    if corruption == "y-none-label":  # None in an object array
        ym = y.astype(object)
        ym[i] = None
        return _container(data, X, kinds), ym, None, {}, None
    if corruption == "single-class":
        return _container(data, X, kinds), np.full_like(y, y[i]), None, {}, None
    w = problem.weights.copy()
    if corruption == "sw-negative":
        # scikit-learn accepts negative weights: then answers must be finite and exact
        if data.draw(st.booleans(), "all negative"):
            w = -w
        else:
            w[i] = -data.draw(st.sampled_from([0.5, 1.0, 3.0]), "weight")
        return X, y, data.draw(st.sampled_from([w, list(w)])), {}, (X, y, w)
    if corruption == "sw-nonfinite":
        w[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), "weight")
        return X, y, w, {}, None
    if corruption == "sw-wrong-length":
        k = data.draw(st.sampled_from([0, 1, N_TRAIN - 1, N_TRAIN + 1]), "len")
        return X, y, np.resize(w, k), {}, None
    if corruption == "sw-2-D":
        return X, y, data.draw(st.sampled_from([w[:, None], np.vstack([w, w])])), {}, None
    if corruption == "sw-all-zero":
        return X, y, np.zeros(N_TRAIN), {}, None
    if corruption == "bad-hyperparameter":
        bad = _bad_hyperparameters(problem)
        name = data.draw(st.sampled_from(sorted(bad)), "parameter")
        return X, y, None, {name: data.draw(st.sampled_from(bad[name]), "value")}, None
    raise AssertionError(corruption)


def _train_applicable(problem, corruption):
    return not (corruption == "single-class" and not problem.classifier)


@pytest.mark.parametrize("problem,corruption",
                         _cases("train", TRAIN_PROBLEMS, TRAIN_CORRUPTIONS, _train_applicable))
@settings(max_examples=N_TRAIN_CORRUPTION, **SETTINGS)
@given(data=st.data())
def test_corrupted_training_data(problem, corruption, data):
    CASES["3 corrupted training data"] += 1
    p = PROBLEMS[problem]
    X, y, sw, params, meaning = corrupt_train(data, p, corruption)
    note(f"X={X!r}\ny={y!r}\nsample_weight={sw!r}\nparams={params!r}")
    fit = checked_call(lambda X, y, sw: p.make().set_params(**params).fit(
        X, y, sample_weight=sw), X, y, sw)
    what = f"fit with {corruption}"
    if not fit.ok:
        assert_clear_error(fit.error, what)
        return
    ref = None
    if meaning is not None:
        ref = Outcome(lambda: p.make().fit(np.asarray(meaning[0], dtype=float), meaning[1],
                                           sample_weight=meaning[2]))
        assert ref.ok, f"{what} was accepted but the dense float64 reference refused it: " \
                       f"{ref.error!r}"
    est = fit.value
    queries = {
        "self_influence": lambda m: m.self_influence(),
        "influence_on_loss": lambda m: m.influence_on_loss(p.X_test, p.y_test),
        "influence_on_loss(remove)": lambda m: m.influence_on_loss(p.X_test, p.y_test,
                                                                   kind="remove"),
        "influence_on_params": lambda m: m.influence_on_params(),
        "loss_values": lambda m: m.loss_values(p.X_test, p.y_test),
    }
    for name, query in queries.items():
        out = checked_call(lambda: query(est))
        judge(out, None if ref is None else Outcome(query, ref.value),
              must_raise=meaning is None, what=f"{name} after {what}")


# ================================================================ property 4
PARAM_CORRUPTIONS = [
    "damping", "influence_solver", "hyperparameter", "loss-temperature", "tol-negative",
    "kind", "k", "k-large", "which", "groups-out-of-range", "groups-empty",
    "groups-mask-length", "groups-not-rows", "groups-not-a-sequence", "explain-damping",
    "explain-damping-not-a-number", "explain-influence_solver", "unfitted", "not-an-estimator",
]

#: entry points that need no Hessian (the loss at the fitted parameters only)
HESSIAN_FREE = ("loss_values", "loss_gradients", "explain().loss_values")

_ALLOWED_KINDS = {
    "influence_on_loss": ("upweight", "remove", "newton"),
    "self_influence": ("upweight", "remove"),
    "influence_on_params": ("upweight", "remove", "newton"),
    "group_influence_on_loss": ("remove", "newton"),
    "aggregate_influence": ("upweight", "remove"),
}
_ALL_KINDS = ["upweight", "remove", "newton", "bogus", "", "Remove", "up", None, 1,
              ("remove",)]


def _queries(p):
    """Every entry point, on a model (or anything explain accepts)."""
    return {
        "self_influence": lambda m: m.self_influence(),
        "influence_on_loss": lambda m: m.influence_on_loss(p.X_test, p.y_test),
        "influence_on_params": lambda m: m.influence_on_params(),
        "loss_values": lambda m: m.loss_values(p.X_test, p.y_test),
        "loss_gradients": lambda m: m.loss_gradients(p.X_test, p.y_test),
        "explain().loss_values": lambda m: skinfluence.explain(m).loss_values(p.X_test,
                                                                            p.y_test),
        "perturbation_influence": lambda m: m.perturbation_influence(p.X_test, p.y_test),
        "group_influence_on_loss": lambda m: m.group_influence_on_loss(p.X_test, p.y_test,
                                                                       [[1, 2]]),
        "stationarity": lambda m: m.stationarity().ratio,
        "explain().self_influence": lambda m: skinfluence.explain(m).self_influence(),
        "top_training_rows": lambda m: skinfluence.top_training_rows(m, k=3),
        "most_influential": lambda m: skinfluence.most_influential(m, p.X_test, p.y_test,
                                                                   k=3),
    }


#: not > 0 (negative, NaN); damping also refuses +inf
_NEGATIVE = st.floats(max_value=-5e-324) | st.just(np.nan)
_BAD_DAMPING = _NEGATIVE | st.just(np.inf)
_NOT_A_SOLVER = st.text(max_size=6).filter(lambda s: s not in ("auto", "direct", "cg", "lissa"))


def corrupt_params(data, p, corruption):
    """``(call, meaning)``: the call to judge and ``None`` (must raise) or the
    reference call it must equal when accepted."""
    base = reference_model(p.name)
    queries = _queries(p)

    def on_copy(**params):
        def call(q):
            m = copy.deepcopy(base)
            m.set_params(**params)
            return q(m)
        return call

    def query(among=None):
        among = sorted(queries) if among is None else among
        return queries[data.draw(st.sampled_from(among), "entry point")]

    def ignored(q):
        # the loss values / gradients need no Hessian: they may ignore a parameter set
        # after fit that plays no part in the loss -- then they must equal the fitted
        # model's answer
        return (lambda: q(base)) if any(q is queries[e] for e in HESSIAN_FREE) else None

    def groups_call(groups):
        kind = data.draw(st.sampled_from(["remove", "newton"]), "kind")
        via = data.draw(st.sampled_from(["model", "explain"]), "via")
        target = base if via == "model" else skinfluence.explain(base)
        return lambda: target.group_influence_on_loss(p.X_test, p.y_test, groups, kind=kind)

    if corruption == "damping":
        q = query()
        v = data.draw(_BAD_DAMPING | st.sampled_from(["x", None, [0.1]]), "damping")
        return (lambda: on_copy(damping=v)(q)), ignored(q)
    if corruption == "influence_solver":
        q = query()
        v = data.draw(_NOT_A_SOLVER | st.sampled_from([3, None, 1.5]), "influence_solver")
        return (lambda: on_copy(influence_solver=v)(q)), ignored(q)
    if corruption == "loss-temperature":  # SVMs: the loss itself depends on t
        q = query(sorted(HESSIAN_FREE))
        name = data.draw(st.sampled_from(["t", "influence_t"]), "parameter")
        v = data.draw(_NEGATIVE | st.just(0.0), name)
        return (lambda: on_copy(**{name: v})(q)), None
    if corruption == "hyperparameter":
        q = query()
        bad = ({"C": _NEGATIVE | st.just(0.0), "l1_ratio": st.floats(0.01, 1.0) |
                st.just(2.0)} if p.name.startswith("logistic") else
               {"C": _NEGATIVE | st.just(0.0), "t": _NEGATIVE | st.just(0.0),
                "influence_t": _NEGATIVE | st.just(0.0)} if p.name.startswith("svm") else
               {"alpha": _NEGATIVE, "positive": st.just(True)})
        names = sorted(bad)
        if p.name.startswith("svm") and any(q is queries[e] for e in HESSIAN_FREE):
            names = ["C"]  # t / influence_t change the loss: see "loss-temperature"
        name = data.draw(st.sampled_from(names), "parameter")
        v = data.draw(bad[name], name)
        return (lambda: on_copy(**{name: v})(q)), ignored(q)
    if corruption == "tol-negative":  # tol plays no part in influence: may be ignored
        q, v = query(), data.draw(st.floats(max_value=-1e-12, allow_infinity=False), "tol")
        return (lambda: on_copy(tol=v)(q)), (lambda: q(base))
    if corruption == "kind":
        entry = data.draw(st.sampled_from(sorted(_ALLOWED_KINDS)), "entry point")
        kind = data.draw(st.sampled_from(_ALL_KINDS).filter(
            lambda k: k not in _ALLOWED_KINDS[entry]) | st.text(max_size=4).filter(
            lambda k: k not in _ALLOWED_KINDS[entry]), "kind")
        via = data.draw(st.sampled_from(["model", "explain"]), "via")
        target = base if via == "model" else skinfluence.explain(base)
        calls = {
            "influence_on_loss": lambda: target.influence_on_loss(p.X_test, p.y_test,
                                                                  kind=kind),
            "self_influence": lambda: target.self_influence(kind=kind),
            "influence_on_params": lambda: target.influence_on_params(kind=kind),
            "group_influence_on_loss": lambda: target.group_influence_on_loss(
                p.X_test, p.y_test, [[1]], kind=kind),
            "aggregate_influence": lambda: skinfluence.aggregate_influence(
                target, p.X_test, p.y_test, kind=kind),
        }
        return calls[entry], None
    if corruption in ("k", "k-large"):
        if corruption == "k":
            k = data.draw(st.integers(max_value=0) | st.floats() | st.booleans() |
                          st.text(max_size=3) | st.sampled_from([None, np.float64(3.0),
                                                                 [3]]), "k")
        else:  # more than the training rows: every row, ranked
            k = data.draw(st.integers(N_TRAIN, 10**6) | st.just(np.int64(N_TRAIN + 1)), "k")
        with_test = data.draw(st.booleans(), "with test rows")
        args = (p.X_test, p.y_test) if with_test else ()
        tool = data.draw(st.sampled_from(["top_training_rows", "most_influential"]), "tool")
        fn = getattr(skinfluence, tool)

        def check(out):
            assert len(_numbers(out)) == (2 * N_TRAIN if tool == "most_influential"
                                          else N_TRAIN)
        return (lambda: fn(base, *args, k=k)), (None if corruption == "k" else
                                                (lambda: fn(base, *args, k=N_TRAIN), check))
    if corruption == "which":
        which = data.draw(st.text(max_size=8).filter(
            lambda s: s not in ("self_influence", "harmful", "helpful")) |
            st.sampled_from([1, "Harmful"]), "which")
        with_test = data.draw(st.booleans(), "with test rows")
        args = (p.X_test, p.y_test) if with_test else ()
        return (lambda: skinfluence.most_influential(base, *args, which=which)), None
    if corruption == "groups-out-of-range":
        bad = data.draw(st.integers(N_TRAIN, 10**9) | st.integers(-10**9, -1), "position")
        g = data.draw(st.sampled_from([[bad], [0, bad], np.array([bad, 1])]), "group")
        return groups_call(data.draw(st.sampled_from([[g], [[1], g], {"g": g}]))), None
    if corruption == "groups-empty":
        groups = data.draw(st.sampled_from(["[]", "{}", "[[]]", "[[1], []]", "[mask0]",
                                            "[np.array([], int)]"]), "groups")
        groups = {"[]": [], "{}": {}, "[[]]": [[]], "[[1], []]": [[1], []],
                  "[mask0]": [np.zeros(N_TRAIN, bool)],
                  "[np.array([], int)]": [np.array([], dtype=int)]}[groups]
        return groups_call(groups), None
    if corruption == "groups-mask-length":
        n = data.draw(st.sampled_from([0, 1, N_TRAIN - 1, N_TRAIN + 1, 2 * N_TRAIN]), "len")
        mask = np.resize(np.array([True, False]), n)
        return groups_call([data.draw(st.sampled_from([mask, mask[:, None]]), "mask")]), None
    if corruption == "groups-not-rows":
        g = data.draw(st.sampled_from([[0.5], [1.0, 2.0], ["r1"], [["a", "b"]], [1 + 2j]]))
        return groups_call([g]), None
    if corruption == "groups-not-a-sequence":
        return groups_call(data.draw(st.sampled_from([None, 3, 2.5]), "groups")), None
    if corruption == "explain-damping":
        v = data.draw(_BAD_DAMPING, "damping")
        q = data.draw(st.sampled_from(["self_influence", "influence_on_params"]))
        return (lambda: getattr(skinfluence.explain(base, damping=v), q)()), None
    if corruption == "explain-damping-not-a-number":
        v = data.draw(st.sampled_from(["x", "0.1", [0.1], {}]), "damping")
        return (lambda: skinfluence.explain(base, damping=v).self_influence()), None
    if corruption == "explain-influence_solver":
        v = data.draw(_NOT_A_SOLVER | st.sampled_from([3, 1.5]), "influence_solver")
        return (lambda: skinfluence.explain(base, influence_solver=v).self_influence()), None
    if corruption == "unfitted":
        q = query()
        return (lambda: q(p.make())), None
    if corruption == "not-an-estimator":
        thing = data.draw(st.sampled_from([None, 42, "model", np.zeros(3)]), "thing")
        tool = data.draw(st.sampled_from(["explain", "top_training_rows",
                                          "most_influential"]), "tool")
        return (lambda: getattr(skinfluence, tool)(thing)), None
    raise AssertionError(corruption)


def _params_applicable(problem, corruption):
    return corruption != "loss-temperature" or problem.name.startswith("svm")


@pytest.mark.parametrize("problem,corruption",
                         _cases("params", PROBLEMS, PARAM_CORRUPTIONS, _params_applicable))
@settings(max_examples=N_PARAMETERS, **SETTINGS)
@given(data=st.data())
def test_bad_parameters_after_fit(problem, corruption, data):
    CASES["4 bad parameters"] += 1
    p = PROBLEMS[problem]
    model = reference_model(problem)
    before = (np.array(model.coef_, copy=True), np.array(model.intercept_, copy=True))
    call, meaning = corrupt_params(data, p, corruption)
    out = checked_call(call)
    what = f"{corruption} on {problem}"
    if meaning is None:
        judge(out, must_raise=True, what=what)
    else:
        ref_call, check = meaning if isinstance(meaning, tuple) else (meaning, None)
        judge(out, Outcome(ref_call), what=what, check=check)
    _unchanged_model(problem, before)


# ---------------------------------------------------------------- the count
def test_zz_number_of_cases(capsys):
    """Prints how many generated cases each property ran (in this session)."""
    total = sum(CASES.values())
    lines = [f"  {name}: {n}" for name, n in sorted(CASES.items())]
    with capsys.disabled():
        print("\nproperty-based cases run:\n" + "\n".join(lines) + f"\n  total: {total}")
