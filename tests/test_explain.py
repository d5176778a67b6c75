"""explain() for fitted scikit-learn estimators and InfluenceRidge (the CLI: test_audit_cli.py)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import skinfluence
from skinfluence import (
    InfluenceLogisticRegression,
    InfluenceNotDefinedError,
    InfluenceRidge,
    PipelineInfluence,
    StationarityWarning,
    explain,
)

from .oracle import oracle_quantities, signed_targets, squared_oracle

NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


def _same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13 * max(np.abs(b).max(), 1e-300))


@parametrize_with_checks(
    [InfluenceRidge(), InfluenceRidge(alpha=0.1, fit_intercept=False)],
    expected_failed_checks=lambda est: {
        "check_non_transformer_estimators_n_iter": (
            "direct Ridge solvers set n_iter_=None, as sklearn's Ridge does (the check "
            "exempts Ridge by its class name)"
        ),
        **({"check_sample_weight_equivalence_on_sparse_data": (
            "inherited: sklearn's Ridge fails it too (its sparse solver stops at tol=1e-4)"
        )} if not est.fit_intercept else {}),
    },
)
def test_ridge_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("data", ["cancer", "wine"])
@pytest.mark.parametrize("params", [{}, {"class_weight": "balanced", "C": 0.3}])
def test_explain_logistic_equals_native(request, data, params):
    X, y, Xt, yt = request.getfixturevalue(data)
    sw = np.random.default_rng(0).uniform(0.5, 2, len(y))
    plain = LogisticRegression(**NEWTON, **params).fit(X, y, sample_weight=sw)
    native = InfluenceLogisticRegression(**NEWTON, **params).fit(X, y, sample_weight=sw)
    ex = explain(plain, X, y, sample_weight=sw)
    _same(ex.influence_on_loss(Xt[:5], yt[:5]), native.influence_on_loss(Xt[:5], yt[:5]))
    _same(ex.self_influence(), native.self_influence())
    _same(ex.influence_on_params(kind="remove"), native.influence_on_params(kind="remove"))
    _same(ex.perturbation_influence(Xt[:2], yt[:2]), native.perturbation_influence(Xt[:2], yt[:2]))


def test_explain_ridge_equals_native_and_newton_is_exact_loo():
    X, y = load_diabetes(return_X_y=True)
    X, y, Xt, yt = X[:250], y[:250], X[250:260], y[250:260]
    ex = explain(Ridge(alpha=0.05).fit(X, y), X, y)
    native = InfluenceRidge(alpha=0.05).fit(X, y)
    _same(ex.influence_on_loss(Xt, yt), native.influence_on_loss(Xt, yt))
    _same(ex.self_influence(), native.self_influence())
    # closed-form leave-one-out (Sherman-Morrison on the normal equations)
    Xa = np.hstack([X, np.ones((len(y), 1))])
    P = np.eye(Xa.shape[1])
    P[-1, -1] = 0
    Ainv = np.linalg.inv(Xa.T @ Xa + 0.05 * P)
    theta = np.r_[native.coef_, native.intercept_]
    resid = y - Xa @ theta
    lev = np.einsum("ij,jk,ik->i", Xa, Ainv, Xa)
    Xta = np.hstack([Xt, np.ones((len(yt), 1))])
    base = 0.5 * (yt - Xta @ theta) ** 2
    closed = np.empty((len(yt), len(y)))
    for i in range(len(y)):
        theta_i = theta - Ainv @ Xa[i] * resid[i] / (1 - lev[i])
        closed[:, i] = 0.5 * (yt - Xta @ theta_i) ** 2 - base
    newton = native.influence_on_loss(Xt, yt, kind="newton")
    np.testing.assert_allclose(newton, closed, rtol=1e-9, atol=1e-9 * np.abs(closed).max())
    # and against actual refits
    for i in (0, 7, 100):
        keep = np.arange(len(y)) != i
        refit = Ridge(alpha=0.05).fit(X[keep], y[keep])
        actual = 0.5 * (yt - refit.predict(Xt)) ** 2 - base
        np.testing.assert_allclose(newton[:, i], actual, rtol=1e-8, atol=1e-8)


def test_explain_multi_output_ridge():
    X, y = load_diabetes(return_X_y=True)
    Y = np.column_stack([y, 0.5 * y + X[:, 0]])
    ex = explain(Ridge(alpha=0.1).fit(X[:200], Y[:200]), X[:200], Y[:200])
    native = InfluenceRidge(alpha=0.1).fit(X[:200], Y[:200])
    _same(ex.influence_on_loss(X[200:203], Y[200:203]), native.influence_on_loss(X[200:203],
                                                                                 Y[200:203]))


def test_explain_sgd_log_loss_matches_oracle_and_reports_stationarity(cancer):
    X, y, Xt, yt = cancer
    sgd = SGDClassifier(loss="log_loss", penalty="l2", alpha=1e-2, max_iter=50, tol=None,
                        random_state=0).fit(X, y)
    with pytest.warns(StationarityWarning):
        ex = explain(sgd, X, y)
    n = len(y)
    # SGD minimises (1/n) sum l_i + alpha/2 ||w||^2: the library's R with C = 1/(alpha n)
    _, _, _, infl = oracle_quantities(sgd, X, y, np.ones(n), Xt[:5], yt[:5],
                                      C=1.0 / (sgd.alpha * n))
    np.testing.assert_allclose(ex.influence_on_loss(Xt[:5], yt[:5]), infl, rtol=1e-7,
                               atol=1e-10 * np.abs(infl).max())
    assert not ex.stationarity().is_stationary


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sgd_log_loss_probabilities_are_scikit_learns(n_classes):
    """SGDClassifier(loss="log_loss") has predict_proba (one-vs-rest sigmoids, normalised
    for several classes): the library's probabilities at the fit equal it, and the
    approximate out-of-fold ones are probabilities (they were refused)."""
    from sklearn.datasets import make_classification

    from skinfluence.predictions import respond

    X, y = make_classification(200, 5, n_informative=4, n_redundant=0,
                               n_classes=n_classes, random_state=0)
    sgd = SGDClassifier(loss="log_loss", alpha=1e-2, max_iter=50, tol=None,
                        random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD stops short of the optimum: said elsewhere
        ex = explain(sgd, X, y)
        model = ex.model_
        F = sgd.decision_function(X).reshape(len(y), -1)
        np.testing.assert_allclose(respond(model, model._influence_model(), F,
                                           "predict_proba"), sgd.predict_proba(X),
                                   rtol=1e-12, atol=1e-15)
        proba = ex.approx_cross_val_predict("predict_proba", newton_steps="auto")
        log_proba = ex.approx_cross_val_predict("predict_log_proba", newton_steps="auto")
        loo = ex.loo_predict_proba()
    assert proba.shape == loo.shape == (len(y), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = skinfluence.find_label_issues(ex)  # it said SGD had no probabilities
    own = proba[np.arange(len(y)), y]
    np.testing.assert_allclose(np.sort(issues["self_confidence"]), np.sort(own), rtol=1e-10)


def test_sgd_out_of_sample_predictions_say_they_hold_its_penalty_fixed():
    """SGD weighs alpha against the mean loss of the rows it is fitted on: refits on
    fewer rows weigh it more. The approximate predictions are those of refits with
    the left-out rows' weights at 0 (C fixed), and say so."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import KFold

    X, y = make_classification(80, 4, random_state=0)
    alpha, n = 0.05, 80
    sgd = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=5, tol=None,
                        random_state=0).fit(X, y)
    exact = LogisticRegression(C=1 / (alpha * n), tol=1e-12, max_iter=1000).fit(X, y)
    sgd.coef_, sgd.intercept_ = exact.coef_.copy(), exact.intercept_.copy()  # its optimum
    ex = explain(sgd, X, y)
    with pytest.warns(UserWarning, match="hold C = 1/\\(alpha n\\)"):
        approx = ex.approx_cross_val_predict("predict_proba", KFold(5), newton_steps="auto")
    held = cross_val_predict(LogisticRegression(C=1 / (alpha * n), tol=1e-12, max_iter=1000),
                             X, y, cv=KFold(5), method="predict_proba")
    np.testing.assert_allclose(approx, held, atol=1e-7)
    with pytest.warns(UserWarning, match="leave-one-out predictions hold C"):
        ex.loo_predict_proba()


def test_explain_pipeline_routes_rows(cancer):
    X, y, Xt, yt = cancer
    raw = X * 3.0 + 1.0  # anything the scaler undoes
    plain = make_pipeline(StandardScaler(), LogisticRegression(**NEWTON)).fit(raw, y)
    native = make_pipeline(StandardScaler(), InfluenceLogisticRegression(**NEWTON)).fit(raw, y)
    ex = explain(plain, raw, y)
    _same(ex.influence_on_loss(Xt[:4] * 3.0 + 1.0, yt[:4]),
          PipelineInfluence(native).influence_on_loss(Xt[:4] * 3.0 + 1.0, yt[:4]))


def test_explain_refuses_clearly(cancer):
    X, y, Xt, yt = cancer
    with pytest.raises(InfluenceNotDefinedError, match="l1_ratio=0"):
        explain(LogisticRegression(l1_ratio=1.0, solver="saga", max_iter=20).fit(X, y), X, y)
    with pytest.raises(InfluenceNotDefinedError, match="SmoothHingeSVC"):
        explain(SGDClassifier(loss="hinge").fit(X, y), X, y)
    with pytest.raises(InfluenceNotDefinedError, match="penalty='l2'"):
        explain(SGDClassifier(loss="log_loss", penalty="l1").fit(X, y), X, y)
    with pytest.raises(TypeError, match="LogisticRegression"):
        explain(RandomForestClassifier(n_estimators=3).fit(X, y), X, y)
    with pytest.raises(InfluenceNotDefinedError, match="positive"):
        explain(Ridge(positive=True).fit(X, y.astype(float)), X, y.astype(float))
    with pytest.raises(ValueError, match="fitted on"):
        explain(LogisticRegression(**NEWTON).fit(X, y), X[:, :5], y)


# ------------------------------------------- more linear models read by explain()
@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:250], y[:250], X[250:262], y[250:262]


def test_explain_logistic_regression_cv_is_the_refit_at_the_chosen_C(wine):
    X, y, Xt, yt = wine
    cv = LogisticRegressionCV(Cs=[0.05, 0.5, 5.0], l1_ratios=(0.0,), scoring="neg_log_loss",
                              use_legacy_attributes=False, **NEWTON).fit(X, y)
    C = float(np.ravel(cv.C_)[0])
    native = InfluenceLogisticRegression(C=C, **NEWTON).fit(X, y)
    ex = explain(cv, X, y)
    _same(ex.influence_on_loss(Xt[:4], yt[:4]), native.influence_on_loss(Xt[:4], yt[:4]))
    _same(ex.self_influence(), native.self_influence())
    # retraining keeps the chosen C fixed (no new cross-validation)
    res = skinfluence.retrain_without(ex, Xt[:2], yt[:2], indices=[5], kinds=("remove",))
    keep = np.arange(len(y)) != 5
    refit = InfluenceLogisticRegression(C=C, **NEWTON).fit(X[keep], y[keep])
    np.testing.assert_allclose(res.actual[:, 0], refit.loss_values(Xt[:2], yt[:2])
                               - native.loss_values(Xt[:2], yt[:2]), rtol=1e-6, atol=1e-10)


def test_explain_ridge_cv_equals_ridge_at_alpha_(diabetes):
    X, y, Xt, yt = diabetes
    cv = RidgeCV(alphas=[0.1, 1.0, 10.0, 100.0]).fit(X, y)
    native = InfluenceRidge(alpha=cv.alpha_).fit(X, y)
    ex = explain(cv, X, y)
    _same(ex.influence_on_loss(Xt, yt), native.influence_on_loss(Xt, yt))
    _same(ex.influence_on_params(kind="remove"), native.influence_on_params(kind="remove"))
    with pytest.raises(InfluenceNotDefinedError, match="one alpha per target"):
        Y = np.column_stack([y, -y])
        explain(RidgeCV(alphas=[0.1, 10.0], alpha_per_target=True).fit(X, Y), X, Y)


@pytest.mark.parametrize("data", ["cancer", "wine"])
@pytest.mark.parametrize("cls", [RidgeClassifier, RidgeClassifierCV])
def test_explain_ridge_classifier_is_least_squares_on_signed_targets(request, data, cls):
    X, y, Xt, yt = request.getfixturevalue(data)
    params = {"alpha": 3.0} if cls is RidgeClassifier else {"alphas": [0.3, 3.0, 30.0]}
    clf = cls(class_weight="balanced", **params).fit(X, y)
    ex = explain(clf, X, y)
    alpha = clf.alpha if cls is RidgeClassifier else clf.alpha_
    # class weights as scikit-learn's "balanced" computes them
    counts = np.bincount(np.searchsorted(clf.classes_, y))
    s = (len(y) / (len(counts) * counts))[np.searchsorted(clf.classes_, y)]
    expected = squared_oracle(clf, X, signed_targets(y, clf.classes_), s, Xt[:4],
                              signed_targets(yt[:4], clf.classes_), C=1.0 / alpha)
    np.testing.assert_allclose(ex.influence_on_loss(Xt[:4], yt[:4]), expected, rtol=1e-8,
                               atol=1e-10 * np.abs(expected).max())
    np.testing.assert_array_equal(ex.predict(Xt), clf.predict(Xt))


def test_explain_linear_regression_newton_is_exact_leave_one_out(diabetes):
    X, y, Xt, yt = diabetes
    ols = LinearRegression().fit(X, y)
    ex = explain(ols, X, y)
    expected = squared_oracle(ols, X, y[:, None], np.ones(len(y)), Xt, yt[:, None], C=np.inf)
    np.testing.assert_allclose(ex.influence_on_loss(Xt, yt), expected, rtol=1e-8,
                               atol=1e-10 * np.abs(expected).max())
    newton = ex.influence_on_loss(Xt, yt, kind="newton")
    base = 0.5 * (yt - ols.predict(Xt)) ** 2
    for i in (0, 17, 200):
        keep = np.arange(len(y)) != i
        actual = 0.5 * (yt - LinearRegression().fit(X[keep], y[keep]).predict(Xt)) ** 2 - base
        np.testing.assert_allclose(newton[:, i], actual, rtol=1e-7, atol=1e-8)


def test_explain_sgd_regressor_matches_oracle(diabetes):
    X, y, Xt, yt = diabetes
    sgd = SGDRegressor(alpha=1e-2, max_iter=2000, tol=None, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StationarityWarning)  # SGD stops near, not at, the optimum
        ex = explain(sgd, X, y)
        infl = ex.influence_on_loss(Xt[:5], yt[:5])
    # (1/n) sum l_i + alpha/2 ||w||^2 is the library's R with C = 1/(alpha n)
    expected = squared_oracle(sgd, X, y[:, None], np.ones(len(y)), Xt[:5], yt[:5, None],
                              C=1.0 / (sgd.alpha * len(y)))
    np.testing.assert_allclose(infl, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())
    with pytest.raises(InfluenceNotDefinedError, match="squared_error"):
        explain(SGDRegressor(loss="huber", max_iter=5, tol=None).fit(X, y), X, y)


def test_explain_refuses_averaged_cv_coefficients(cancer):
    X, y, _, _ = cancer
    cv = LogisticRegressionCV(Cs=[0.1, 1.0], refit=False, l1_ratios=(0.0,),
                              scoring="neg_log_loss", use_legacy_attributes=False).fit(X, y)
    with pytest.raises(InfluenceNotDefinedError, match="refit=True"):
        explain(cv, X, y)


def test_leverage_one_rows_are_nan_with_a_warning_never_a_guess(diabetes):
    X, y, Xt, yt = diabetes
    X, y = X[:60], y[:60]
    only_row_0 = np.zeros((len(y), 1))
    only_row_0[0] = 1.0  # a feature seen in row 0 alone: without it, its weight is free
    Xl = np.hstack([X, only_row_0])
    Xtl = np.hstack([Xt, np.full((len(yt), 1), 0.5)])
    reg = InfluenceRidge(alpha=0.0, solver="cholesky").fit(Xl, y)
    with pytest.warns(RuntimeWarning, match="leverage 1"):
        newton = reg.influence_on_loss(Xtl, yt, kind="newton")
    assert np.isnan(newton[:, 0]).all() and np.isfinite(newton[:, 1:]).all()
    base = 0.5 * (yt - reg.predict(Xtl)) ** 2
    keep = np.arange(len(y)) != 5
    refit = LinearRegression().fit(Xl[keep], y[keep])
    np.testing.assert_allclose(newton[:, 5], 0.5 * (yt - refit.predict(Xtl)) ** 2 - base,
                               rtol=1e-7, atol=1e-8)
    with pytest.warns(RuntimeWarning, match="groups have leverage 1"):
        groups = reg.group_influence_on_loss(Xtl, yt, [[0, 1], [2, 3]], kind="newton")
    assert np.isnan(groups[:, 0]).all() and np.isfinite(groups[:, 1]).all()


def test_raw_longley_is_not_singular_and_matches_statsmodels_leave_one_out():
    """NIST's ill-conditioned Longley data in its raw units (rcond 1e-20 unscaled)."""
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.datasets import longley

    from skinfluence.solvers import ConjugateGradient

    data = longley.load_pandas()
    X, y = data.exog.to_numpy(float), data.endog.to_numpy(float)
    ols = LinearRegression().fit(X, y)
    ex = explain(ols, X, y)
    direct = ex.influence_on_loss(X[:4], y[:4])
    cg = explain(ols, X, y, influence_solver=ConjugateGradient(tol=1e-14, maxiter=5000))
    np.testing.assert_allclose(cg.influence_on_loss(X[:4], y[:4]), direct, rtol=1e-6,
                               atol=1e-6 * np.abs(direct).max())
    # kind="newton" is exact leave-one-out for least squares: statsmodels' dfbeta
    fit = sm.OLS(y, sm.add_constant(X)).fit()
    Xc = sm.add_constant(X)
    dfbeta = fit.get_influence().dfbeta  # theta_hat - theta_-i, constant first
    base = 0.5 * (y[:4] - Xc[:4] @ fit.params) ** 2
    loo = np.array([0.5 * (y[:4] - Xc[:4] @ (fit.params - dfbeta[i])) ** 2 - base
                    for i in range(len(y))]).T
    np.testing.assert_allclose(ex.influence_on_loss(X[:4], y[:4], kind="newton"), loo,
                               rtol=1e-6, atol=1e-6 * np.abs(loo).max())


def test_an_exact_least_squares_fit_is_stationary():
    # noiseless targets: the Newton step and the removal steps are both rounding, and
    # their ratio (11 here) said nothing about the fit
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = explain(LinearRegression().fit(X, y), X, y)
        assert ex.stationarity().is_stationary
        assert np.abs(ex.self_influence()).max() < 1e-20  # nothing is left to explain


@pytest.mark.parametrize("make", [LinearRegression, Ridge])
def test_leave_out_predictions_have_the_estimators_shape(make):
    # y of shape (n, 1): LinearRegression predicts (n, 1), Ridge (n,); so does cross_val_predict
    from sklearn.model_selection import KFold, cross_val_predict

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    Y = (X @ np.array([1.0, 2.0, 3.0]) + rng.normal(size=30))[:, None]
    ex = explain(make().fit(X, Y), X, Y)
    exact = cross_val_predict(make(), X, Y, cv=KFold(5))
    approx = ex.approx_cross_val_predict(cv=KFold(5))
    assert approx.shape == exact.shape == make().fit(X, Y).predict(X).shape
    assert ex.loo_predict().shape == exact.shape
    np.testing.assert_allclose(approx, exact, rtol=1e-8, atol=1e-10)


def test_joblib_round_trip_keeps_an_explanation_usable(cancer, tmp_path):
    """joblib writes shared arrays apart, so identities do not survive it; the loaded
    explanation answers as before, and one saved after a refit stays refused."""
    joblib = pytest.importorskip("joblib")
    X, y, Xt, yt = cancer
    model = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ex = explain(model)
    joblib.dump(ex, tmp_path / "ex.joblib")
    loaded = joblib.load(tmp_path / "ex.joblib")
    np.testing.assert_array_equal(loaded.self_influence(), ex.self_influence())
    loaded.final_estimator_.fit(X[:400], y[:400])  # the loaded one still notices a refit
    with pytest.raises(ValueError, match="refitted"):
        loaded.self_influence()
    model.fit(X[:400], y[:400])
    joblib.dump(ex, tmp_path / "stale.joblib")
    with pytest.raises(ValueError, match="refitted"):
        joblib.load(tmp_path / "stale.joblib").self_influence()


@pytest.mark.filterwarnings("ignore::skinfluence.DampingWarning")  # damping=0.5 on purpose
def test_explanation_settings_changed_after_fit_take_effect_or_are_refused(cancer):
    """``set_params(damping=..., influence_solver=...)`` on an explanation was ignored
    after fit, invalid values included; as on an estimator they now take effect at the
    next question (the user's estimator keeps its own) or are refused."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y, _, _ = cancer
    for est, rows in ((InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12)
                       .fit(X, y), ()),
                      (LogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X, y),
                       (X, y))):
        ex = skinfluence.explain(est, *rows)
        plain = ex.self_influence()
        ex.set_params(damping=0.5)
        np.testing.assert_allclose(
            ex.self_influence(),
            skinfluence.explain(est, *rows, damping=0.5).self_influence(), rtol=1e-12)
        assert not np.allclose(ex.self_influence(), plain)
        assert getattr(est, "damping", 0.0) == 0.0  # the user's estimator is untouched
        ex.set_params(damping=None, influence_solver="cg")
        np.testing.assert_allclose(ex.self_influence(), plain, rtol=1e-6)
        ex.set_params(influence_solver=None)
        np.testing.assert_array_equal(ex.self_influence(), plain)
        for bad in ({"damping": -1.0}, {"damping": np.inf}, {"damping": True},
                    {"influence_solver": "bogus"}):
            ex.set_params(**bad)
            with pytest.raises(ValueError, match=f"{list(bad)[0]}"):
                ex.self_influence()
            ex.set_params(damping=None, influence_solver=None)
        with pytest.raises(InvalidParameterError, match="Explanation"):
            skinfluence.explain(est, *rows, damping=-1.0)


def test_an_explanation_with_a_replaced_or_no_estimator_says_so(cancer):
    """set_params(estimator=other) after fit went on answering for the old estimator;
    an unfitted explanation (a clone) raised a bare AttributeError from some methods."""
    import pickle

    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    X, y, Xt, yt = cancer
    a = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X, y)
    b = InfluenceLogisticRegression(C=0.1, solver="newton-cholesky", tol=1e-12).fit(X, y)
    ex = explain(a)
    restored = pickle.loads(pickle.dumps(ex))  # still current after a round trip
    np.testing.assert_array_equal(restored.self_influence(), ex.self_influence())
    ex.set_params(estimator=b)
    for stale in (ex, pickle.loads(pickle.dumps(ex))):
        with pytest.raises(ValueError, match=r"estimator was replaced"):
            stale.self_influence()
    np.testing.assert_array_equal(ex.fit().self_influence(), explain(b).self_influence())
    unfitted = clone(ex)
    for call in (lambda: unfitted.influence_on_loss(Xt[:2], yt[:2]),
                 lambda: unfitted.predict(Xt[:2]), unfitted.self_influence,
                 lambda: unfitted.influence_on_prediction(Xt[:2])):
        with pytest.raises(NotFittedError):
            call()
