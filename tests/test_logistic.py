"""InfluenceLogisticRegression: drop-in behaviour and exactness of influence."""

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import (
    InfluenceLogisticRegression,
    InfluenceNotDefinedError,
    SingularHessianError,
    StationarityWarning,
    explain,
)

from .oracle import oracle_quantities, per_sample_logistic_loss, theta_of

TIGHT = dict(tol=1e-12, max_iter=10000)
NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


@parametrize_with_checks(
    [
        InfluenceLogisticRegression(),
        InfluenceLogisticRegression(solver="newton-cholesky", damping=1e-3),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------- drop-in
@pytest.mark.parametrize("data", ["cancer", "wine"])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"C": 0.3, "class_weight": "balanced"},
        {"solver": "liblinear", "intercept_scaling": 2.0},
        {"fit_intercept": False, "solver": "newton-cholesky"},
    ],
)
def test_same_as_parent(request, data, params):
    X, y, Xt, yt = request.getfixturevalue(data)
    if params.get("solver") == "liblinear" and len(np.unique(y)) > 2:
        pytest.skip("liblinear is binary only")
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    ours = InfluenceLogisticRegression(**params).fit(X, y, sample_weight=sw)
    ref = LogisticRegression(**params).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(ours.coef_, ref.coef_)
    np.testing.assert_array_equal(ours.intercept_, ref.intercept_)
    np.testing.assert_array_equal(ours.predict_proba(Xt), ref.predict_proba(Xt))
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    assert ours.score(Xt, yt) == ref.score(Xt, yt)


# ------------------------------------------------------------------ oracle
def _effective_s(clf, y, sw):
    from sklearn.utils import compute_class_weight

    s = np.ones(len(y)) if sw is None else np.asarray(sw, float)
    if clf.class_weight is not None:
        cw = compute_class_weight(clf.class_weight, classes=clf.classes_, y=y, sample_weight=s)
        s = s * cw[np.searchsorted(clf.classes_, y)]
    return s


ORACLE_CASES = [
    ("cancer", {}, False),
    ("cancer", {"class_weight": {0: 2.0, 1: 0.5}}, True),
    ("cancer", {"solver": "liblinear", "intercept_scaling": 3.0, "tol": 1e-12}, False),
    ("wine", {}, False),
    ("wine", {"class_weight": "balanced"}, True),
    ("wine", {"fit_intercept": False}, True),
]


@pytest.mark.parametrize("data, params, weighted", ORACLE_CASES)
def test_hessian_gradients_influence_match_autograd_oracle(request, data, params, weighted):
    X, y, Xt, yt = request.getfixturevalue(data)
    X, y, Xt, yt = X[:120], y[:120], Xt[:7], yt[:7]
    sw = np.random.default_rng(2).uniform(0.2, 3.0, len(y)) if weighted else None
    kw = {**TIGHT, **params}
    clf = InfluenceLogisticRegression(**kw).fit(X, y, sample_weight=sw)
    s = _effective_s(clf, y, sw)
    ipen = 1.0 / kw["intercept_scaling"] ** 2 if kw.get("solver") == "liblinear" else 0.0
    H, G, Gt, infl = oracle_quantities(clf, X, y, s, Xt, yt, intercept_penalty=ipen)

    np.testing.assert_allclose(clf.hessian(), H, rtol=1e-8, atol=1e-12 * np.abs(H).max())
    np.testing.assert_allclose(clf.loss_gradients(X, y), G, rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(clf.loss_gradients(Xt, yt), Gt, rtol=1e-8, atol=1e-13)
    ours = clf.influence_on_loss(Xt, yt)
    np.testing.assert_allclose(ours, infl, rtol=1e-7, atol=1e-9 * np.abs(infl).max())
    # influence on parameters: -H^+ grad l_i, columns in theta order
    Hinv = np.linalg.pinv(H, rcond=1e-10, hermitian=True)
    np.testing.assert_allclose(
        clf.influence_on_params(), -G @ Hinv, rtol=1e-7, atol=1e-9 * np.abs(G @ Hinv).max()
    )
    # removal scale: -(s_i / n) I_up
    np.testing.assert_allclose(
        clf.influence_on_loss(Xt, yt, kind="remove"), -infl * s / len(y), rtol=1e-7,
        atol=1e-9 * np.abs(infl).max() * s.max() / len(y),
    )


def test_multinomial_singular_direction_is_handled(wine):
    """H is singular along the common intercept shift; influence stays finite."""
    X, y, Xt, yt = wine
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    H = clf.hessian()
    K, d = clf.coef_.shape
    v = np.zeros(H.shape[0])
    v[K * d :] = 1.0
    assert np.linalg.norm(H @ v) < 1e-12 * np.linalg.norm(H)
    infl = clf.influence_on_loss(Xt, yt)
    assert np.all(np.isfinite(infl))
    # every per-sample gradient is orthogonal to the flat direction
    assert np.abs(clf.loss_gradients(X, y) @ v).max() < 1e-12


# ------------------------------------------------------ definition (refit)
def _test_loss(clf, Xt, yt):
    K = 1 if len(clf.classes_) == 2 else len(clf.classes_)
    return per_sample_logistic_loss(
        theta_of(clf), Xt, np.searchsorted(clf.classes_, yt), K, clf.fit_intercept
    )


@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_finite_difference_of_refit_matches_definition(request, data):
    """d/d eps of the refitted test loss with s_i -> s_i + eps n is I_up,loss."""
    X, y, Xt, yt = request.getfixturevalue(data)
    X, y = X[:150], y[:150]
    clf = InfluenceLogisticRegression(C=0.5, **NEWTON).fit(X, y)
    infl = clf.influence_on_loss(Xt[:5], yt[:5])
    n = len(y)
    h = 1e-4
    for i in np.argsort(-np.abs(infl).max(axis=0))[:4]:
        losses = []
        for eps in (h, -h):
            sw = np.ones(n)
            sw[i] += eps * n
            refit = clone(clf).fit(X, y, sample_weight=sw)
            losses.append(_test_loss(refit, Xt[:5], yt[:5]))
        fd = (losses[0] - losses[1]) / (2 * h)
        np.testing.assert_allclose(fd, infl[:, i], rtol=1e-4, atol=1e-4 * np.abs(fd).max())


# ------------------------------------------------------------- symmetry
@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_symmetry_and_self_influence_is_diagonal(request, data):
    X, y, _, _ = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    full = clf.influence_on_loss(X, y)
    np.testing.assert_allclose(full, full.T, rtol=1e-9, atol=1e-12 * np.abs(full).max())
    si = clf.self_influence()
    np.testing.assert_allclose(si, np.diag(full), rtol=1e-9, atol=1e-14)
    assert np.all(si <= 0)
    n = len(y)
    np.testing.assert_allclose(clf.self_influence(kind="remove"), -si / n)


# -------------------------------------------------------- leave-one-out
LOO_R = {}


@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_leave_one_out_retraining(request, data):
    """Predicted vs actual test-loss change after exact retraining without a point."""
    X, y, Xt, yt = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    rng = np.random.default_rng(0)
    tests = rng.choice(len(yt), size=3, replace=False)
    pred = clf.influence_on_loss(Xt[tests], yt[tests], kind="remove")
    base = _test_loss(clf, Xt[tests], yt[tests])
    rs = []
    for t in range(3):
        top = np.argsort(-np.abs(pred[t]))[:50]
        actual = []
        for i in top:
            keep = np.ones(len(y), bool)
            keep[i] = False
            refit = clone(clf).fit(X[keep], y[keep])
            actual.append(_test_loss(refit, Xt[tests[t : t + 1]], yt[tests[t : t + 1]])[0])
        actual = np.array(actual) - base[t]
        rs.append(pearsonr(pred[t, top], actual)[0])
    LOO_R[data] = rs
    print(f"\nleave-one-out Pearson R on {data}: {np.round(rs, 4)}")
    assert min(rs) >= 0.9


# ------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors(cancer, wine):
    X, y, Xt, yt = wine
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    bad = Xt[:3].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.influence_on_loss(bad, yt[:3])
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.influence_on_loss(bad, yt[:3])
    with pytest.raises(ValueError, match="features"):
        clf.influence_on_loss(Xt[:3, :5], yt[:3])
    with pytest.raises(ValueError, match="not seen during fit"):
        clf.influence_on_loss(Xt[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.influence_on_loss(Xt[:3], yt[:2])
    with pytest.raises(ValueError, match="kind"):
        clf.self_influence(kind="delete")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        InfluenceLogisticRegression().self_influence()
    failed = InfluenceLogisticRegression()  # a first fit that stops part-way
    with pytest.raises(ValueError, match="2 classes"):
        failed.fit(Xt[:5], np.zeros(5))
    with pytest.raises(NotFittedError, match="did not finish"):
        failed.self_influence()


def test_inputs_are_not_modified(wine):
    X, y, Xt, yt = wine
    X, y, Xt, yt = (a.copy() for a in (X, y, Xt, yt))
    copies = [a.copy() for a in (X, y, Xt, yt)]
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    clf.influence_on_loss(Xt, yt, kind="remove")
    clf.self_influence(kind="remove")
    clf.influence_on_params(kind="remove")
    for a, b in zip((X, y, Xt, yt), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [{"l1_ratio": 1.0, "solver": "saga"},
                                    {"l1_ratio": 0.5, "solver": "saga"}])
def test_l1_penalty_fits_but_influence_raises(cancer, params):
    X, y, Xt, yt = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = InfluenceLogisticRegression(**params, max_iter=50, random_state=0).fit(X, y)
    ref = LogisticRegression(**params, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    np.testing.assert_array_equal(clf.coef_, ref.coef_)
    with pytest.raises(InfluenceNotDefinedError, match="l1_ratio=0"):
        clf.self_influence()
    with pytest.raises(InfluenceNotDefinedError, match="L1"):
        clf.influence_on_loss(Xt[:2], yt[:2])


def test_no_penalty_nonsingular_and_singular(cancer):
    X, y, Xt, yt = cancer
    # two features: not separable, so the unpenalised optimum is unique
    clf = InfluenceLogisticRegression(C=np.inf, **NEWTON).fit(X[:, :2], y)
    H, G, Gt, infl = oracle_quantities(clf, X[:, :2], y, np.ones(len(y)), Xt[:4, :2], yt[:4])
    np.testing.assert_allclose(clf.influence_on_loss(Xt[:4, :2], yt[:4]), infl, rtol=1e-7)
    # separable with no penalty: a duplicated feature makes H singular
    Xd = np.hstack([X[:, :2], X[:, :1]])
    clf = InfluenceLogisticRegression(C=np.inf, **NEWTON).fit(Xd, y)
    with pytest.raises(SingularHessianError, match="damping"):
        clf.self_influence()
    clf.set_params(damping=1e-3)
    assert np.all(np.isfinite(clf.self_influence()))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_separable_classes_without_penalty_are_refused_at_any_tol(n_classes):
    # the optimum is at infinity: what the optimiser returns depends on where it
    # stopped, so influence is refused whether or not it stopped early
    rng = np.random.default_rng(0)
    centres = 6.0 * np.eye(n_classes, 2)
    y = np.repeat(np.arange(n_classes), 40)
    X = centres[y] + rng.standard_normal((len(y), 2))
    for kw in ({}, {"solver": "newton-cholesky", "tol": 1e-12}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's own convergence warnings
            clf = InfluenceLogisticRegression(C=np.inf, **kw).fit(X, y)
        assert np.all(clf.predict(X) == y)
        with pytest.raises(SingularHessianError, match="separable"):
            clf.influence_on_loss(X[:2], y[:2])
        with pytest.raises(SingularHessianError, match="separable"):
            explain(LogisticRegression(C=np.inf, **kw).fit(X, y), X, y).self_influence()
    if n_classes == 2:  # one row on the wrong side: a finite optimum, influence is computed
        y[0] = 1
        clf = InfluenceLogisticRegression(C=np.inf, **NEWTON).fit(X, y)
        assert np.all(np.isfinite(clf.self_influence()))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_class_with_no_weight_is_refused_with_an_unpenalised_intercept(n_classes):
    # every row of the last class weighs 0: the objective falls without end as that
    # class's intercept moves away, so there is no optimum, whatever C is
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.arange(60) % n_classes
    w = (y != n_classes - 1).astype(float)
    intercepts = []
    for tol in (1e-4, 1e-10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = InfluenceLogisticRegression(tol=tol, solver="newton-cholesky" if
                                              n_classes == 2 else "lbfgs").fit(X, y, w)
        intercepts.append(np.ravel(clf.intercept_).copy())
        with pytest.raises(SingularHessianError, match=f"has class {n_classes - 1}: with"):
            clf.self_influence()
        with pytest.raises(SingularHessianError, match="no finite optimum"):
            explain(LogisticRegression(tol=tol).fit(X, y, w), X, y, w).influence_on_loss(
                X[:2], y[:2])
    assert np.abs(intercepts[1] - intercepts[0]).max() > 1.0  # no optimum to converge to
    # a penalised model without intercept has one; damping is the escape hatch
    assert np.all(np.isfinite(InfluenceLogisticRegression(fit_intercept=False).fit(
        X, y, w).self_influence()))
    with pytest.warns(Warning, match="damping=0.001 is 100% of the smallest curvature"):
        assert np.all(np.isfinite(clf.set_params(damping=1e-3).self_influence()))


def test_balanced_class_weights_warn_that_refits_recompute_them():
    from sklearn.datasets import make_classification
    from sklearn.utils import compute_class_weight

    X, y = make_classification(300, 5, n_informative=3, n_redundant=0, weights=[0.85],
                               random_state=0)
    fixed = dict(zip([0, 1], compute_class_weight("balanced", classes=np.array([0, 1]), y=y)))
    balanced = InfluenceLogisticRegression(C=1.0, class_weight="balanced", **NEWTON).fit(X, y)
    held = InfluenceLogisticRegression(C=1.0, class_weight=fixed, **NEWTON).fit(X, y)
    with pytest.warns(UserWarning, match="class_weight='balanced' is held"):
        pred = balanced.influence_on_loss(X[:1], y[:1], kind="newton")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # weights given as a dict: nothing to warn about
        # what the warning says: the balanced weights are held at their fitted values
        np.testing.assert_allclose(held.influence_on_loss(X[:1], y[:1], kind="newton")[0],
                                   pred, rtol=1e-8, atol=1e-12)
    # ... while a refit without a row recomputes them: the actual change differs
    rows = np.argsort(-np.abs(pred))[:3]
    change = {}
    for name, clf in (("balanced", balanced), ("held", held)):
        loss0 = clf.loss_values(X[:1], y[:1])[0]
        change[name] = np.array([clone(clf).fit(np.delete(X, i, 0), np.delete(y, i))
                                 .loss_values(X[:1], y[:1])[0] - loss0 for i in rows])
    assert np.all(np.abs(change["balanced"] / change["held"] - 1) > 0.05)


def test_settings_changed_after_fit_are_refused_until_refit(cancer):
    # influence depends on C through the Hessian: C changed without a refit would
    # describe coefficients that C did not produce
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(C=1.0, **NEWTON).fit(X, y)
    before = clf.influence_on_loss(Xt[:3], yt[:3])
    for change in ({"C": 2.0}, {"fit_intercept": False}, {"class_weight": "balanced"}):
        est = clone(clf).fit(X, y).set_params(**change)
        with pytest.raises(ValueError, match=f"changed after fit: {list(change)[0]}="):
            est.influence_on_loss(Xt[:3], yt[:3])
        with pytest.raises(ValueError, match="changed after fit"):
            est._refit()  # the retraining tools' refits too
        np.testing.assert_array_equal(est.fit(X, y).set_params(**change).coef_,
                                      est.coef_)  # untouched until refit
    # the influence settings and the optimiser's take effect without a refit
    clf.set_params(damping=0.0, influence_solver="direct", tol=1e-3, max_iter=7, verbose=0)
    np.testing.assert_allclose(clf.influence_on_loss(Xt[:3], yt[:3]), before, rtol=1e-12)
    # refitting with the new setting is accepted, and setting it back is too
    clf.set_params(C=2.0)
    assert np.all(np.isfinite(clf.set_params(C=1.0).influence_on_loss(Xt[:3], yt[:3])))
    clf.set_params(C=2.0, **NEWTON).fit(X, y)
    assert not np.allclose(clf.influence_on_loss(Xt[:3], yt[:3]), before)


def test_coefficients_set_by_hand_are_described_not_the_kept_ones(cancer):
    # the kept influence state described the fitted coefficients even after coef_ was
    # replaced or edited in place: it is rebuilt at the coefficients the model holds
    # (which are no optimum: a StationarityWarning says so)
    from skinfluence import StationarityWarning

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    fitted = clf.self_influence()
    loo = clf.loo_predict_proba()
    clf.coef_ = clf.coef_ * 1.5
    with pytest.warns(StationarityWarning):
        moved = clf.self_influence()
    assert not np.allclose(moved, fitted)
    clf.coef_ /= 1.5
    np.testing.assert_allclose(clf.self_influence(), fitted, rtol=1e-10)
    clf.intercept_[0] += 0.3  # in place
    with pytest.warns(StationarityWarning):
        assert not np.allclose(clf.loo_predict_proba(), loo)


def test_parameters_are_checked_at_every_query(cancer):
    # values already checked are not checked again (the same objects); a new value,
    # set through set_params or as an attribute, is, at the next query
    from sklearn.utils._param_validation import InvalidParameterError

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    clf.self_influence()
    for name, bad in (("damping", -1.0), ("influence_solver", "cholesky"),
                      ("damping", "0.1")):
        clf.set_params(damping=0.0, influence_solver="auto")
        clf.self_influence()
        setattr(clf, name, bad)
        for _ in range(2):
            with pytest.raises(InvalidParameterError, match=name):
                clf.influence_on_loss(Xt[:2], yt[:2])
    clf.damping = 0.0
    clf.influence_solver = "auto"
    assert np.all(np.isfinite(clf.influence_on_loss(Xt[:2], yt[:2])))


def test_multinomial_no_penalty_uses_complement(wine):
    """With C=inf the softmax is flat along adding one vector to every class."""
    X, y, Xt, yt = wine
    X, Xt = X[:, :2], Xt[:, :2]  # not separable in two features
    clf = InfluenceLogisticRegression(C=np.inf, **NEWTON).fit(X, y)
    H, G, Gt, infl = oracle_quantities(clf, X, y, np.ones(len(y)), Xt[:5], yt[:5])
    np.testing.assert_allclose(
        clf.influence_on_loss(Xt[:5], yt[:5]), infl, rtol=1e-6, atol=1e-9 * np.abs(infl).max()
    )


# ----------------------------------------------------------- stationarity
def test_stationarity_warning_and_report(cancer):
    X, y, Xt, yt = cancer
    loose = InfluenceLogisticRegression(max_iter=4).fit(X, y)  # stopped far from the optimum
    with pytest.warns(StationarityWarning, match="distorts influence by about"):
        report = loose.stationarity()
    assert not report.is_stationary and report.relative_error > 0.01
    loose = InfluenceLogisticRegression().fit(X, y)  # scikit-learn's default tol=1e-4
    tight = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StationarityWarning)
        report = tight.stationarity()
    assert report.is_stationary
    assert np.isnan(report.relative_error)  # not estimated: never a misleading 0.0
    assert report.gradient_norm < 1e-6
    # the Newton step estimates the distance to the optimum: check it on the loose fit
    exact = theta_of(InfluenceLogisticRegression(**NEWTON).fit(X, y))
    dist = np.linalg.norm(theta_of(loose) - exact)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StationarityWarning)
        step = loose.stationarity().newton_step_norm
    assert 0.5 * dist < step < 2 * dist


def test_separable_classes_without_penalty_raise_and_losses_still_work(cancer):
    X, y, Xt, yt = cancer
    # a feature that separates the classes perfectly, and no penalty
    Xs = np.column_stack([X[:, :2], np.where(y == 1, 1.0, -1.0)])
    clf = InfluenceLogisticRegression(C=np.inf, solver="lbfgs", max_iter=3000, tol=1e-14)
    clf.fit(Xs, y)
    with pytest.raises(SingularHessianError, match="separable"):
        clf.influence_on_loss(Xs[:3], y[:3])
    # the loss and its gradients need no Hessian
    assert np.all(np.isfinite(clf.loss_values(Xs[:3], y[:3])))
    assert clf.loss_gradients(Xs[:3], y[:3]).shape == (3, 4)


def test_newton_stops_at_a_noisy_gradient_floor_and_says_so():
    """A gradient that float sums cannot push below 1e-9 must not run to max_iter."""
    from sklearn.exceptions import ConvergenceWarning

    from skinfluence._optimize import newton_minimize

    rng = np.random.default_rng(0)
    M = rng.normal(size=(6, 6))
    A, b = M @ M.T + 6 * np.eye(6), rng.normal(size=6)

    def evaluate(theta):
        noise = 1e-9 * rng.standard_normal(6)  # the floor of the computed gradient
        return 0.5 * theta @ A @ theta - b @ theta, A @ theta - b + noise, lambda: A

    with pytest.warns(ConvergenceWarning, match=r"max\|grad\| = .*no longer decreases"):
        theta, n_iter = newton_minimize(evaluate, np.zeros(6), tol=1e-13, max_iter=1000)
    assert n_iter < 10
    np.testing.assert_allclose(theta, np.linalg.solve(A, b), atol=1e-8)



@pytest.mark.parametrize("data", ["fair", "raw_cancer"])
def test_stationarity_warning_is_calibrated_to_the_error_of_influence(data):
    """The warning fires when influence is off by more than 1%, and only then."""
    from sklearn.datasets import load_breast_cancer

    if data == "fair":
        fair = pytest.importorskip("statsmodels.datasets.fair")
        frame = fair.load_pandas().data
        y = (frame["affairs"] > 0).astype(int).to_numpy()
        X = frame.drop(columns=["affairs"]).to_numpy(float)
    else:
        X, y = load_breast_cancer(return_X_y=True)  # raw units: lbfgs stops far away
    defaults = InfluenceLogisticRegression().fit(X, y)
    exact = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12,
                                        max_iter=1000).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StationarityWarning)
        report = defaults.stationarity()
        actual = (np.linalg.norm(defaults.influence_on_params() - exact.influence_on_params())
                  / np.linalg.norm(exact.influence_on_params()))
    warned = any(issubclass(w.category, StationarityWarning) for w in caught)
    assert warned == (actual > 0.01) == (not report.is_stationary), (actual, report)
    # the estimate is the right size (measured: fair 6.5e-4 vs 3.2e-4; raw 2.1 vs 0.89)
    assert actual / 4 < report.relative_error < actual * 4


def test_same_settings_after_fit_are_not_changes(cancer):
    from skinfluence import InfluenceRidge

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(C=1.0, class_weight="balanced", **NEWTON).fit(X, y)
    with pytest.warns(UserWarning, match="balanced"):
        before = clf.self_influence()
    # the same value in another type, and the optimiser's settings: no refit, no rebuild
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the balanced warning would come back on a rebuild
        clf.set_params(C=1, verbose=1, tol=1e-3, n_jobs=2)
        np.testing.assert_array_equal(clf.self_influence(), before)
    ridge = InfluenceRidge(alpha=1.0, solver="cholesky").fit(X, y * 1.0)
    expected = ridge.self_influence()
    ridge.set_params(solver="lsqr", alpha=np.float64(1.0))  # Ridge's solvers share one optimum
    np.testing.assert_array_equal(ridge.self_influence(), expected)
    # losses need no penalty: asked after a change, they are the fitted model's
    np.testing.assert_array_equal(clf.set_params(C=3.0).loss_values(Xt[:3], yt[:3]),
                                  clf.set_params(C=1.0).loss_values(Xt[:3], yt[:3]))


@pytest.mark.parametrize("make", [lambda: InfluenceLogisticRegression(),
                                  lambda: __import__("skinfluence").SmoothHingeSVC()])
def test_negative_sample_weights_are_refused_before_fitting(cancer, make):
    from sklearn.exceptions import NotFittedError

    X, y, Xt, yt = cancer
    w = np.ones(len(y))
    w[3] = -5.0
    est = make()
    with pytest.raises(ValueError, match="negative"):
        est.fit(X, y, sample_weight=w)
    with pytest.raises(NotFittedError):
        est.predict(X[:2])  # not left half-fitted
