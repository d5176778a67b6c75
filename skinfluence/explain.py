"""One way in: :func:`explain` turns any fitted thing into what the tools query.

``explain(fitted)`` accepts

- a fitted skinfluence estimator (it keeps its training rows),
- a fitted :class:`~sklearn.pipeline.Pipeline` ending in one (test rows go
  through the earlier steps, as in ``predict``),
- a fitted :class:`~sklearn.model_selection.GridSearchCV` /
  :class:`~sklearn.model_selection.RandomizedSearchCV` (``refit=True``) over
  either (its ``best_estimator_`` is explained),
- a fitted scikit-learn estimator whose objective skinfluence can read
  (:data:`skinfluence._readers.SUPPORTED`), or a pipeline or search ending in
  one, together with the rows it was fitted on: ``explain(model, X_train, y_train)``,
- an :class:`Explanation` (returned as it is),

and returns an :class:`Explanation`: the fitted preprocessing, the final
influence model over the rows it was fitted on (as it saw them), the training
rows' labels and the feature names. Every tool in skinfluence starts with
:func:`as_explanation` and uses only this interface, so none of them
special-cases types.

What stays fixed: the preprocessing steps are held as fitted. Influence describes
re-weighting rows in the final model's objective, and the retraining tools
refit only the final step, on the rows as it saw them.
"""

import copy

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ._dask import is_dask
from ._frames import (
    check_same_labels,
    check_test_rows,
    check_training_rows,
    index_of,
    label_cube,
    label_matrix,
    label_predictions,
    label_vector,
    outputs_of,
    positions_of,
    row_labels,
    short_feature_names,
    take_index,
)
from ._mixin import InfluenceMixin
from .solvers import INFLUENCE_SETTINGS
from ._readers import SUPPORTED, FittedObjective, read_objective

__all__ = ["explain", "as_explanation", "Explanation", "SUPPORTED"]


def _unwrap(obj):
    """The fitted preprocessing steps and the final estimator of a fitted thing."""
    pre = []
    while True:
        if isinstance(obj, BaseSearchCV):
            check_is_fitted(obj)
            if not hasattr(obj, "best_estimator_"):
                raise ValueError(
                    f"This {type(obj).__name__} was fitted with refit=False, so it has no "
                    "best_estimator_ to explain; fit it with refit=True (the default)."
                )
            obj = obj.best_estimator_
        elif isinstance(obj, Pipeline):
            check_is_fitted(obj)
            steps = [step for _, step in obj.steps if step not in (None, "passthrough")]
            pre.extend(steps[:-1])
            obj = steps[-1]
        else:
            return pre, obj


def _preprocessor(pre):
    if not pre:
        return None
    return pre[0] if len(pre) == 1 else make_pipeline(*pre)


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _same_rows(A, B):
    """Whether two row sets hold the same numbers (sparse ones compared as sparse)."""
    if sp.issparse(A) or sp.issparse(B):
        A, B = sp.csr_matrix(A, dtype=np.float64), sp.csr_matrix(B, dtype=np.float64)
        if A.shape != B.shape:
            return False
        scale = max(abs(B).max(), np.finfo(float).tiny) if B.nnz else 1.0
        diff = abs(A - B)
        return bool(diff.nnz == 0 or diff.max() <= 1e-12 * scale)
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B)
    return A.shape == B.shape and np.allclose(A, B, rtol=1e-12, atol=0.0, equal_nan=True)


def _check_kept_rows(model, preprocessor, X=None, y=None):
    """Refuse training rows / labels that are not the ones ``model`` was fitted on.

    A skinfluence estimator keeps its rows: rows passed for display or labels
    must be those rows, in fit order (through the preprocessing), or every
    table would pair one row's numbers with another row's label and values.
    """
    n = model._fit_X.shape[0]
    for name, given in (("X", X), ("y", y)):
        if given is not None and _n_rows(given) != n:
            raise ValueError(
                f"{name} has {_n_rows(given)} rows but the model was fitted on {n}; "
                "pass the rows it was fitted on (or none: it keeps them)."
            )
    if is_dask(model._fit_X):
        return
    if X is not None:
        try:
            Xt = preprocessor.transform(X) if preprocessor is not None else X
            same = _same_rows(Xt, model._fit_X)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"X is not the rows the model was fitted on: {exc}") from exc
        if not same:
            raise ValueError(
                "X is not the rows the model was fitted on (values or row order differ after "
                "the preprocessing); pass the same rows in the same order (or none: the "
                "model keeps them)."
            )
        # a pipeline's final step saw X as an array and took the row labels from y
        check_same_labels(index_of(X), model._fit_index, "the fitted y",
                          "refit with y aligned to X, e.g. y.loc[X.index]")
    if y is not None and model._fit_y is not None and not np.array_equal(
            np.asarray(y).ravel(), np.asarray(model._fit_y).ravel()):
        raise ValueError(
            "y is not the labels the model was fitted on (in fit order); pass the same y "
            "(or none: the model keeps it)."
        )


class Explanation(BaseEstimator):
    """Influence queries on any fitted thing, with raw rows, names and labels.

    Usually built with :func:`explain`. ``fit`` refits nothing: it unwraps a
    search or pipeline, keeps the fitted preprocessing, and builds the influence
    model of the final estimator over the rows it was fitted on. All methods
    take *raw* rows (a DataFrame with strings and missing values, as
    ``predict`` does) and pass them through the preprocessing.

    Arrays are positional (column ``i`` is the ``i``-th training row in fit
    order); ``as_frame=True`` labels them with the training rows' own labels:
    the index of the training DataFrame (or of ``y`` when it is a Series), else
    their positions.

    Parameters
    ----------
    estimator : fitted estimator, Pipeline, GridSearchCV or RandomizedSearchCV
        See :func:`explain`.
    influence_solver : {"auto", "direct", "cg", "lissa"}, solver object or None
        ``None`` keeps a skinfluence estimator's own setting (``"auto"`` for
        estimators read by :func:`explain`).
    damping : float or None
        ``None`` keeps the estimator's own setting (0 for estimators read).

    Attributes
    ----------
    preprocessor_ : fitted transformer or None
        The steps before the final estimator (held fixed).
    model_ : InfluenceMixin
        The influence model of the final step, over the rows it was fitted on.
    final_estimator_ : estimator
        The final step as given.
    feature_names_ : ndarray of str
        The final model's input features, from the preprocessing's
        ``get_feature_names_out`` (``ColumnTransformer`` prefixes dropped when
        the names stay unique), else ``feature_names_in_``, else ``x0, x1, ...``.
    train_index_ : pandas.Index or None
        Labels of the training rows (``None``: they are labelled by position).
    X_train_ : array-like or None
        The raw training rows when they were passed to ``fit`` (for display).
    classes_ : ndarray
        For classifiers.
    target_names_ : ndarray
        For a regressor with several outputs fitted on a DataFrame target: its
        column names, which name the outputs in labelled results.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.compose import make_column_transformer
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> from skinfluence import InfluenceLogisticRegression, explain
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.normal(40, 10, 80), "sex": rng.choice(["f", "m"], 80)},
    ...                  index=[f"p{i}" for i in range(80)])
    >>> y = pd.Series((X.age + 10 * (X.sex == "f") + rng.normal(0, 5, 80) > 45).astype(int),
    ...               index=X.index)
    >>> pre = make_column_transformer((StandardScaler(), ["age"]), (OneHotEncoder(), ["sex"]))
    >>> pipe = make_pipeline(pre, InfluenceLogisticRegression(solver="newton-cholesky",
    ...                                                       tol=1e-12))
    >>> search = GridSearchCV(pipe, {"influencelogisticregression__C": [0.1, 1.0]}, cv=3)
    >>> ex = explain(search.fit(X, y))
    >>> list(ex.feature_names_)
    ['age', 'sex_f', 'sex_m']
    >>> ex.self_influence(as_frame=True).index[:3].tolist()
    ['p0', 'p1', 'p2']
    """

    def __init__(self, estimator, *, influence_solver=None, damping=None):
        self.estimator = estimator
        self.influence_solver = influence_solver
        self.damping = damping

    def fit(self, X=None, y=None, sample_weight=None):
        """Unwrap the fitted thing and build the influence model of its final step.

        Parameters
        ----------
        X, y : optional
            The raw rows and labels it was fitted on. Required for estimators
            that do not keep their training data (scikit-learn's own); for a
            skinfluence final step they are optional and, when given, are shown
            by the tables and label the rows.
        sample_weight : array-like, optional
            The weights a scikit-learn estimator was fitted with (skinfluence
            estimators keep their own).

        Returns
        -------
        self : Explanation
        """
        self._check_settings()
        pre, final = _unwrap(self.estimator)
        preprocessor = _preprocessor(pre)
        check_is_fitted(final)
        if not isinstance(final, InfluenceMixin):
            read_objective(final)  # refuse unsupported estimators before asking for data
        if isinstance(final, InfluenceMixin):
            if not hasattr(final, "_fit_X"):
                raise ValueError(
                    f"This {type(final).__name__} was fitted without its training data being "
                    "stored; refit it with its own `fit` to compute influence."
                )
            kept = final._fit_sample_weight
            if sample_weight is not None and not (
                    kept is not None and np.shape(sample_weight) == np.shape(kept)
                    and np.array_equal(np.asarray(sample_weight, dtype=float), kept)):
                raise ValueError(
                    f"{type(final).__name__} keeps the sample weights it was fitted with, "
                    "and these differ from them; leave sample_weight out (it is only for "
                    "estimators read by explain())."
                )
            model = final
            overrides = {k: v for k, v in (("influence_solver", self.influence_solver),
                                           ("damping", self.damping)) if v is not None}
            if overrides:  # a shallow copy: the user's estimator keeps its settings
                model = copy.copy(final)
                model._influence_cache = {}
                model.set_params(**overrides)
            _check_kept_rows(model, preprocessor, X, y)
        else:
            if X is None or y is None:
                raise TypeError(
                    f"A fitted {type(final).__name__} does not keep its training data: call "
                    "skinfluence.explain(model, X_train, y_train) with the rows it was "
                    "fitted on, or use skinfluence's "
                    f"{_drop_in(final)} as the final step (it keeps them)."
                )
            check_training_rows(X, y, sample_weight)
            Xt = preprocessor.transform(X) if preprocessor is not None else X
            model = FittedObjective(
                final,
                influence_solver="auto" if self.influence_solver is None else
                self.influence_solver,
                damping=0.0 if self.damping is None else self.damping,
            ).fit(Xt, y, sample_weight)
        self._set_parts(preprocessor, model, final, X, index_of(X, y, n=model._fit_X.shape[0]))
        self._settings = self._wanted_settings()
        if isinstance(model, FittedObjective):
            self.stationarity()  # warns now, at the point of explanation, if not stationary
        return self

    def _set_parts(self, preprocessor, model, final, X_train, train_index):
        self._explained = getattr(self, "estimator", None)
        self.preprocessor_ = preprocessor
        self._model = model
        self._fitted_as = _fit_signature(final, preprocessor, getattr(self, "estimator", None))
        self.final_estimator_ = final
        self.X_train_ = X_train
        self.train_index_ = train_index if train_index is not None else model._fit_index
        self.n_features_in_ = model.n_features_in_
        self.feature_names_ = self._feature_names()
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_
        if hasattr(model, "target_names_"):
            self.target_names_ = model.target_names_
        return self

    def _feature_names(self):
        names = None
        if self.preprocessor_ is not None:
            try:
                names = self.preprocessor_.get_feature_names_out()
            except (AttributeError, TypeError, ValueError):
                names = None
        else:
            names = getattr(self.model_, "feature_names_in_", None)
        if names is None or len(names) != self.model_.n_features_in_:
            names = [f"x{j}" for j in range(self.model_.n_features_in_)]
        return short_feature_names(names)

    def __sklearn_is_fitted__(self):
        return "_model" in self.__dict__ or "model_" in self.__dict__

    def __getstate__(self):
        state = dict(super().__getstate__())  # object's is the live __dict__
        if "_fitted_as" in state:
            # identities do not survive every pickler (joblib writes shared arrays
            # apart): keep whether the explanation was current, and take a new
            # record of the loaded objects
            state["_fitted_as"] = _unchanged(self._fitted_as, self.final_estimator_)
        if "_explained" in state:  # the same: whether the estimator is still the one
            state["_explained"] = self._explained is self.estimator
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        current = self.__dict__.get("_fitted_as")
        if isinstance(current, bool):
            self._fitted_as = (_fit_signature(self.final_estimator_, self.preprocessor_,
                                              getattr(self, "estimator", None))
                               if current else _STALE)
        if isinstance(self.__dict__.get("_explained"), bool):
            self._explained = self.estimator if self._explained else _STALE

    @property
    def model_(self):
        """The influence model of the final step (refused once the step was refitted)."""
        if "_model" not in self.__dict__:
            if "model_" in self.__dict__:  # pickled by an older version: no record to check
                return self.__dict__["model_"]
            check_is_fitted(self)  # NotFittedError, as every other method gives
        if "_explained" in self.__dict__ and self.estimator is not self._explained:
            raise ValueError(
                "This explanation's estimator was replaced (set_params(estimator=...)) "
                "after it was made: its answers describe the old one. Call fit again, or "
                "skinfluence.explain(...) on the new estimator."
            )
        if not _unchanged(self._fitted_as, self.final_estimator_):
            raise ValueError(
                f"The {type(self.final_estimator_).__name__} explained here (or its "
                "preprocessing) was refitted or changed after the explanation was made "
                "(or a refit of it failed part-way): "
                "its numbers would be labelled with the old rows, or test rows would go "
                "through other preprocessing than the training rows did. Call "
                "skinfluence.explain(...) again on the refitted model."
            )
        if self._wanted_settings() != self.__dict__.get("_settings", {}):
            self._apply_settings()
        return self._model

    def _wanted_settings(self):
        """The influence settings this explanation overrides (None: the model's own)."""
        return {k: v for k, v in (("influence_solver", self.influence_solver),
                                  ("damping", self.damping)) if v is not None}

    def _check_settings(self):
        """Refuse influence settings that no estimator would take."""
        validate_parameter_constraints(
            {k: [*v, None] for k, v in INFLUENCE_SETTINGS.items()},
            {"influence_solver": self.influence_solver, "damping": self.damping},
            caller_name="Explanation")
        if self.damping is not None and (isinstance(self.damping, bool)
                                         or not np.isfinite(self.damping)):
            raise ValueError(f"damping must be a finite number >= 0; got {self.damping!r}.")

    def _apply_settings(self):
        """``set_params(damping=..., influence_solver=...)`` after fit take effect at the
        next question, as on an estimator (no refit), checked as at fit. The user's
        estimator keeps its own settings: a copy carries the overrides."""
        self._check_settings()
        wanted = self._wanted_settings()
        model, final = self._model, self.final_estimator_
        if isinstance(model, FittedObjective):
            model.set_params(influence_solver=wanted.get("influence_solver", "auto"),
                             damping=wanted.get("damping", 0.0))
        elif wanted:
            model = copy.copy(final)
            model._influence_cache = {}
            model.set_params(**wanted)
        else:
            model = final
        self._model = model
        self._settings = wanted

    # ---------------------------------------------------------------- rows
    def transform(self, X):
        """Rows as the final model sees them (through the fitted preprocessing)."""
        check_is_fitted(self)
        check_test_rows(X)
        return X if self.preprocessor_ is None else self.preprocessor_.transform(X)

    def _rows(self, X, y):
        """Test rows through the preprocessing, after checking they line up with ``y``."""
        check_test_rows(X, y)
        return self.transform(X)

    @property
    def n_train_(self):
        """Number of training rows."""
        return self.model_._fit_X.shape[0]

    @property
    def y_train_(self):
        """The training labels / targets, in fit order."""
        return self.model_._fit_y

    def training_labels(self, positions=None):
        """Labels of the training rows at ``positions`` (all rows by default)."""
        check_is_fitted(self)
        if positions is None:
            positions = np.arange(self.n_train_)
        return row_labels(self.train_index_, positions)

    def training_rows(self, positions, X_train=None):
        """The training rows at ``positions`` as a DataFrame indexed by their labels.

        Raw rows when they are known (``X_train`` here, or given to ``fit``),
        else the rows as the final model sees them, named by
        :attr:`feature_names_`. Sparse rows show the features that some shown
        row has (the rest are zero in all of them): five rows of sparse text
        were a table of 8,000 mostly empty columns.
        """
        import pandas as pd

        positions = np.asarray(positions, dtype=np.intp)
        check_is_fitted(self)
        labels = take_index(self.train_index_, positions, None)
        X = self.X_train_
        if X_train is not None:
            _check_kept_rows(self.model_, self.preprocessor_, X_train)
            X = X_train
        if X is not None:
            if isinstance(X, pd.DataFrame):
                out = X.iloc[positions].copy()
                if self.train_index_ is not None:
                    out.index = labels
                return out
            names = [f"x{j}" for j in range(X.shape[1])] if np.ndim(X) == 2 else None
            if sp.issparse(X):  # the chosen rows only, never the whole matrix densified
                return _sparse_rows(X[positions], names, labels)
            return pd.DataFrame(np.asarray(X)[positions], index=labels, columns=names)
        Z = self.model_._fit_X[positions]
        if is_dask(Z):
            Z = Z.compute()
        if sp.issparse(Z):
            return _sparse_rows(Z, list(self.feature_names_), labels)
        return pd.DataFrame(np.asarray(Z), index=labels, columns=list(self.feature_names_))

    # ------------------------------------------------------------ influence
    def _test_index(self, X, y):
        return index_of(X, y)

    def influence_on_loss(self, X_test, y_test, *, kind="upweight", as_frame=False):
        """:meth:`InfluenceMixin.influence_on_loss` on raw test rows.

        Shape (n_test, n_train), positional; a DataFrame labelled test rows ×
        training rows with ``as_frame=True``.
        """
        out = self.model_.influence_on_loss(self._rows(X_test, y_test), y_test, kind=kind)
        if not as_frame:
            return out
        return label_matrix(out, self._test_index(X_test, y_test), self.train_index_)

    def self_influence(self, *, kind="upweight", as_frame=False):
        """:meth:`InfluenceMixin.self_influence` of the training rows (a labelled
        Series with ``as_frame=True``)."""
        check_is_fitted(self)
        out = self.model_.self_influence(kind=kind)
        return label_vector(out, self.train_index_, "self_influence") if as_frame else out

    def influence_on_params(self, *, kind="upweight", as_frame=False):
        """:meth:`InfluenceMixin.influence_on_params` (a DataFrame of training rows ×
        named parameters with ``as_frame=True``)."""
        check_is_fitted(self)
        out = self.model_.influence_on_params(kind=kind)
        if not as_frame:
            return out
        return label_matrix(out, self.train_index_, self.parameter_names(), "train_row",
                            "parameter")

    def cooks_distance(self, *, as_frame=False):
        """:meth:`InfluenceMixin.cooks_distance` of the training rows (a labelled
        Series with ``as_frame=True``)."""
        check_is_fitted(self)
        out = self.model_.cooks_distance()
        return label_vector(out, self.train_index_, "cooks_distance") if as_frame else out

    def parameter_names(self):
        """Names of ``theta`` (``coef_.ravel()``, then ``intercept_``) in feature names."""
        check_is_fitted(self)
        return self.model_.parameter_names(self.feature_names_)

    def perturbation_influence(self, X_test, y_test, *, as_frame=False):
        """:meth:`InfluenceMixin.perturbation_influence` on raw test rows.

        Shape (n_test, n_train, n_features) over the final model's inputs
        (named by :attr:`feature_names_`), positional; with ``as_frame=True`` a
        DataFrame with one row per (test row, training row) pair and one column
        per input feature of the final model.
        """
        out = self.model_.perturbation_influence(self._rows(X_test, y_test), y_test)
        if not as_frame:
            return out
        return label_cube(out, self._test_index(X_test, y_test), self.train_index_,
                          (list(self.feature_names_), "feature"))

    def group_influence_on_loss(self, X_test, y_test, groups, *, kind="remove",
                                as_frame=False):
        """:meth:`InfluenceMixin.group_influence_on_loss` on raw test rows.

        ``groups`` are positions, boolean masks or labels of the training rows
        (as :attr:`train_index_` labels them; a dict names the groups).
        """
        out = self.model_.group_influence_on_loss(self._rows(X_test, y_test), y_test,
                                                  self._group_rows(groups), kind=kind)
        if not as_frame:
            return out
        names = list(groups) if isinstance(groups, dict) else None
        return label_matrix(out, self._test_index(X_test, y_test), names, columns_name="group",
                            train_index=self.train_index_)

    def _group_rows(self, groups):
        """Groups as positions, labels and masks resolved against this explanation's labels."""
        def resolve(g):
            return positions_of(g, self.train_index_, self.n_train_, "group rows")
        if isinstance(groups, dict):
            return {k: resolve(g) for k, g in groups.items()}
        if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
            raise TypeError(f"groups must be a list or dict of row selections (positions, "
                            f"masks or labels); got {type(groups).__name__}.")
        return [resolve(g) for g in groups]

    def loss_values(self, X, y):
        """:meth:`InfluenceMixin.loss_values` of raw rows."""
        return self.model_.loss_values(self._rows(X, y), y)

    def loss_gradients(self, X, y, *, as_frame=False):
        """:meth:`InfluenceMixin.loss_gradients` of raw rows (a DataFrame labelled by
        the rows and :meth:`parameter_names` with ``as_frame=True``)."""
        out = self.model_.loss_gradients(self._rows(X, y), y)
        if not as_frame:
            return out
        return label_matrix(out, self._test_index(X, y), self.parameter_names(),
                            index_name="row", columns_name="parameter")

    def hessian(self):
        """:meth:`InfluenceMixin.hessian` of the final model."""
        check_is_fitted(self)
        return self.model_.hessian()

    def stationarity(self):
        """:meth:`InfluenceMixin.stationarity` of the final model."""
        check_is_fitted(self)
        return self.model_.stationarity()

    # ------------------------------------------- influence on predictions
    def influence_on_prediction(self, X_test, *, kind="upweight",
                                response_method="auto", as_frame=False):
        """:meth:`InfluenceMixin.influence_on_prediction` on raw test rows."""
        out = self.model_.influence_on_prediction(self.transform(X_test), kind=kind,
                                                  response_method=response_method)
        if as_frame and out.ndim == 2:
            return label_matrix(out, self._test_index(X_test, None), self.train_index_)
        if as_frame:
            return label_cube(out, self._test_index(X_test, None), self.train_index_,
                              outputs_of(self))
        return out

    def influence_on_function(self, fn, X_test, *, kind="upweight", as_frame=False):
        """:meth:`InfluenceMixin.influence_on_function` on raw test rows."""
        out = self.model_.influence_on_function(fn, self.transform(X_test), kind=kind)
        return label_vector(out, self.train_index_, f"influence_{kind}") if as_frame else out

    def _predictions(self, out, name, as_frame):
        if not as_frame:
            return out
        return label_predictions(out, self.train_index_, name, outputs_of(self))

    def loo_decision_function(self, *, as_frame=False):
        """:meth:`InfluenceMixin.loo_decision_function` of the final model."""
        check_is_fitted(self)
        return self._predictions(self.model_.loo_decision_function(),
                                 "loo_decision_function", as_frame)

    def loo_predict_proba(self, *, as_frame=False):
        """:meth:`InfluenceMixin.loo_predict_proba` of the final model."""
        check_is_fitted(self)
        return self._predictions(self.model_.loo_predict_proba(), "loo_predict_proba",
                                 as_frame)

    def loo_predict(self, *, as_frame=False):
        """:meth:`InfluenceMixin.loo_predict` of the final model (labelled by the
        training rows with ``as_frame=True``)."""
        check_is_fitted(self)
        return self._predictions(self.model_.loo_predict(), "loo_predict", as_frame)

    def approx_cross_val_predict(self, method="predict", cv=None, *, groups=None,
                                 newton_steps=1, as_frame=False):
        """:meth:`InfluenceMixin.approx_cross_val_predict` of the final model (the
        preprocessing is held as fitted on all rows)."""
        check_is_fitted(self)
        out = self.model_.approx_cross_val_predict(method, cv, groups=groups,
                                                   newton_steps=newton_steps)
        return self._predictions(out, f"cv_{method}", as_frame)

    # ---------------------------------------------------------- predictions
    def predict(self, X):
        """Predictions of the fitted thing on raw rows (as its ``predict``)."""
        return self.model_.predict(self.transform(X))

    def score(self, X, y):
        """Score of the fitted thing on raw rows (as its ``score``)."""
        return self.model_.score(self._rows(X, y), y)

    # ------------------------------------------------------------ retraining
    def _refit(self, sample_weight=None, X=None, y=None):
        """Refit the final step with other weights / rows (rows as it sees them).

        The preprocessing, labels and names stay as they are.
        """
        check_is_fitted(self)
        model = self.model_._refit(sample_weight, X=X, y=y)
        new = copy.copy(self)
        keep_rows = X is None
        new._set_parts(self.preprocessor_, model, self.final_estimator_,
                       self.X_train_ if keep_rows else None,
                       self.train_index_ if keep_rows or _n_rows(X) == self.n_train_ else None)
        new.feature_names_ = self.feature_names_  # the refit saw arrays: keep the names
        return new

    def refit(self, sample_weight=None, *, X=None, y=None):
        """The final step refitted with other sample weights or labels, as an Explanation.

        ``X`` are raw rows (passed through the fixed preprocessing); by default
        the training rows. A row with weight 0 is removed from the objective;
        the preprocessing is *not* refitted. Warm-started from the fitted
        parameters where the estimator allows.
        """
        Xt = None if X is None else self.transform(X)
        return self._refit(sample_weight, X=Xt, y=y)


_DROP_INS = {
    "LogisticRegression": "InfluenceLogisticRegression", "LogisticRegressionCV":
    "InfluenceLogisticRegression", "Ridge": "InfluenceRidge", "RidgeCV": "InfluenceRidge",
    "LinearRegression": "InfluenceRidge(alpha=0)", "PoissonRegressor":
    "InfluencePoissonRegressor", "GammaRegressor": "InfluenceGammaRegressor",
    "TweedieRegressor": "InfluenceTweedieRegressor",
}


#: The record of an explanation pickled after its model was refitted: never current.
_STALE = ([(None, "coef_", object())], None)


def _fitted_slots(obj, out, depth=0):
    """``(owner, name, value)`` for the fitted arrays and estimators (attributes
    ``name_``) of ``obj`` and of the estimators inside it: a refit puts new objects
    in those slots."""
    if depth > 10:
        return out
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _fitted_slots(item, out, depth + 1)
        return out
    if not hasattr(obj, "get_params"):
        return out
    for name, value in vars(obj).items():
        if name.endswith("_") and not name.startswith("_"):
            if isinstance(value, np.ndarray) or sp.issparse(value) or hasattr(
                    value, "get_params") or isinstance(value, (list, tuple)):
                out.append((obj, name, value))
            _fitted_slots(value, out, depth + 1)
    for value in obj.get_params(deep=False).values():  # a Pipeline's steps, a wrapped model
        if hasattr(value, "get_params") or isinstance(value, (list, tuple)):
            _fitted_slots(value, out, depth + 1)
    return out


def _search_slots(obj):
    """``(search, "best_estimator_", value)`` for the searches on the way from ``obj`` to
    its final step: a search's refit puts a new best estimator there, and leaves the
    old one (the explained one) as it was."""
    out = []
    while isinstance(obj, (BaseSearchCV, Pipeline)):
        if isinstance(obj, BaseSearchCV):
            best = getattr(obj, "best_estimator_", None)
            out.append((obj, "best_estimator_", best))
            obj = best
        else:
            obj = obj.steps[-1][1]
    return out


def _sparse_rows(Z, names, labels):
    """Sparse rows as a DataFrame of the columns that some row has."""
    import pandas as pd

    Z = sp.csr_matrix(Z)
    keep = np.unique(Z.indices)
    return pd.DataFrame(Z[:, keep].toarray(), index=labels,
                        columns=[names[j] for j in keep])


def _fit_signature(final, preprocessor, explained=None):
    """What a refit of the explained thing changes: the fitted slots of the final step
    and of the preprocessing (their objects kept, so that identities stay theirs),
    the best estimator of each search in ``explained``, and the final step's
    coefficients (a copy: edits in place)."""
    slots = (_fitted_slots(final, []) + _fitted_slots(preprocessor, [])
             + _search_slots(explained))
    coef = getattr(final, "coef_", None)
    if sp.issparse(coef):
        coef = coef.toarray()
    coef = None if coef is None else np.array(coef, dtype=np.float64, copy=True)
    return slots, coef


def _unchanged(signature, final):
    """Whether every recorded slot still holds its object and the coefficients their
    values (no walk over the estimators: one attribute read per slot)."""
    slots, coef = signature
    if not all(getattr(owner, name, None) is value for owner, name, value in slots):
        return False
    now = getattr(final, "coef_", None)
    if coef is None or now is None:
        return (coef is None) == (now is None)
    now = now.toarray() if sp.issparse(now) else np.asarray(now)
    return now.shape == coef.shape and np.array_equal(now, coef)


def _drop_in(est):
    """The skinfluence estimator to use instead of ``est`` (by its class name)."""
    return _DROP_INS.get(type(est).__name__, "InfluenceLogisticRegression or InfluenceRidge")


def as_explanation(fitted):
    """The :class:`Explanation` of any fitted thing the tools accept (see :func:`explain`)."""
    if isinstance(fitted, Explanation):
        check_is_fitted(fitted)
        return fitted
    return explain(fitted)


def explain(estimator, X_train=None, y_train=None, sample_weight=None, *,
            influence_solver=None, damping=None):
    """Influence methods for any fitted model, pipeline or search.

    Parameters
    ----------
    estimator : fitted estimator, Pipeline, GridSearchCV or RandomizedSearchCV
        A skinfluence estimator (or a pipeline / search ending in one) keeps its
        training rows: ``explain(search)`` is enough. A scikit-learn estimator
        whose objective can be read -- LogisticRegression / LogisticRegressionCV
        (L2 or none), Ridge, RidgeCV, RidgeClassifier(CV), LinearRegression,
        SGDClassifier(log_loss, l2), SGDRegressor(squared_error, l2) -- needs
        the rows it was fitted on. L1 penalties, hinge losses and other
        estimators are refused with the alternative named. CV estimators are
        explained at their chosen hyperparameter (``C_``, ``alpha_``), which
        retraining keeps fixed.
    X_train, y_train : the raw rows and labels it was fitted on
        Optional for skinfluence estimators (then shown by the tables).
    sample_weight : array-like, optional
        The weights a scikit-learn estimator was fitted with.
    influence_solver, damping : as on the skinfluence estimators
        ``None``: a skinfluence estimator's own settings ("auto", 0 otherwise).

    Returns
    -------
    Explanation

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import skinfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(),
    ...                      LogisticRegression(solver="newton-cholesky", tol=1e-10))
    >>> ex = skinfluence.explain(pipe.fit(X[:400], y[:400]), X[:400], y[:400])
    >>> ex.influence_on_loss(X[400:403], y[400:403]).shape
    (3, 400)
    """
    if isinstance(estimator, Explanation) and X_train is None and y_train is None:
        check_is_fitted(estimator)
        return estimator
    return Explanation(estimator, influence_solver=influence_solver, damping=damping).fit(
        X_train, y_train, sample_weight
    )
