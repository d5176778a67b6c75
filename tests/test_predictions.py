"""Influence on predictions, Newton parameter changes and out-of-sample predictions.

Independent references: statsmodels' GLM influence (one-step d_params), exact
refits, closed-form least squares, and scikit-learn's cross_val_predict.
"""

import re
import warnings

import numpy as np
from scipy.special import softmax
import pytest
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from skinfluence import (InfluenceLogisticRegression, InfluenceRidge, explain,
                         find_label_issues)

NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:200], y[:200], X[200:230], y[200:230]


def _refit_without(est, i):
    w = np.ones(len(est._fit_y))
    w[i] = 0.0
    return clone(est).fit(est._fit_X, est._fit_y, sample_weight=w)


def test_newton_params_equal_statsmodels_one_step_d_params(cancer):
    sm = pytest.importorskip("statsmodels.api")
    X, y, _, _ = cancer
    # unpenalised and not separable; no fitted probability within 1e-3 of 0 or 1, where
    # statsmodels clips the binomial mean (its d_params then drift by 1e-7, ours do not)
    X = X[:, [1, 4, 8]]
    clf = InfluenceLogisticRegression(C=np.inf, **NEWTON).fit(X, y)
    res = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit(tol=1e-14)
    d_params = res.get_influence().d_params  # theta_hat - theta_-i, constant first
    ours = clf.influence_on_params(kind="newton")
    expected = -np.column_stack([d_params[:, 1:], d_params[:, 0]])
    assert 1e-3 < res.fittedvalues.min() and res.fittedvalues.max() < 1 - 1e-3
    np.testing.assert_allclose(ours, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def test_newton_params_are_exact_leave_one_out_for_ridge(diabetes):
    X, y, _, _ = diabetes
    reg = InfluenceRidge(alpha=0.3).fit(X, y)
    newton = reg.influence_on_params(kind="newton")
    for i in (0, 50, 199):
        refit = _refit_without(reg, i)
        change = np.r_[refit.coef_ - reg.coef_, refit.intercept_ - reg.intercept_]
        np.testing.assert_allclose(newton[i], change, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("data, floor_newton", [("cancer", 0.99), ("wine", 0.985)])
def test_influence_on_probabilities_against_refits(request, data, floor_newton):
    X, y, Xt, yt = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    tests = Xt[:3]
    first = clf.influence_on_prediction(tests, kind="remove")
    newton = clf.influence_on_prediction(tests, kind="newton")
    base = clf.predict_proba(tests)
    # the 30 rows that move the predictions most (measured R: cancer 0.963 / 0.991,
    # wine 0.986 / 0.989 for first order / Newton)
    size = np.abs(first).reshape(first.shape[0], first.shape[1], -1).sum(axis=(0, 2))
    rows = np.argsort(-size)[:30]
    actual = np.stack([_refit_without(clf, i).predict_proba(tests) - base for i in rows], 1)
    if first.ndim == 2:  # binary: the probability of classes_[1]
        actual = actual[:, :, 1]
    r_first = pearsonr(first[:, rows].ravel(), actual.ravel())[0]
    r_newton = pearsonr(newton[:, rows].ravel(), actual.ravel())[0]
    assert r_first >= 0.95 and r_newton >= floor_newton, (r_first, r_newton)
    # the upweight derivative is the removal change divided by -s_i / n
    up = clf.influence_on_prediction(tests, kind="upweight")
    np.testing.assert_allclose(first, -up / len(y), rtol=1e-12, atol=1e-15)


def test_prediction_influence_is_exact_for_least_squares(diabetes):
    X, y, Xt, yt = diabetes
    reg = InfluenceRidge(alpha=0.3).fit(X, y)
    newton = reg.influence_on_prediction(Xt[:5], kind="newton", response_method="predict")
    for i in (3, 77):
        np.testing.assert_allclose(newton[:, i],
                                   _refit_without(reg, i).predict(Xt[:5]) - reg.predict(Xt[:5]),
                                   rtol=1e-8, atol=1e-9)
    with pytest.raises(ValueError, match="no decision_function"):
        reg.influence_on_prediction(Xt[:2], response_method="decision_function")


def test_influence_on_a_function_of_the_outputs(cancer):
    import autograd.numpy as anp

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    group = Xt[:20]

    def mean_probability(F):  # the subgroup's mean P(classes_[1])
        return anp.mean(1.0 / (1.0 + anp.exp(-F[..., 0])), axis=-1)

    for kind in ("upweight", "remove", "newton"):
        per_row = clf.influence_on_prediction(group, kind=kind)
        np.testing.assert_allclose(clf.influence_on_function(mean_probability, group, kind=kind),
                                   per_row.mean(axis=0), rtol=1e-9, atol=1e-14)
    with pytest.raises(ValueError, match="one value per row"):
        clf.influence_on_function(lambda F: anp.mean(F), group, kind="newton")


def test_leave_one_out_predictions(diabetes, cancer):
    X, y, _, _ = diabetes
    reg = InfluenceRidge(alpha=0.3).fit(X, y)
    loo = reg.loo_predict()
    for i in (0, 120):  # exact for least squares
        np.testing.assert_allclose(loo[i], _refit_without(reg, i).predict(X[i:i + 1])[0],
                                   rtol=1e-9)
    Xc, yc, _, _ = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(Xc, yc)
    proba = clf.loo_predict_proba()
    assert proba.shape == (len(yc), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the rows whose own prediction depends most on themselves: one Newton step is close
    rows = np.argsort(clf.self_influence())[:8]
    exact = np.array([_refit_without(clf, i).predict_proba(Xc[i:i + 1])[0] for i in rows])
    assert np.abs(proba[rows] - exact).max() < 0.02
    np.testing.assert_array_equal(clf.loo_predict(), clf.classes_[np.argmax(proba, axis=1)])


def test_multiclass_leave_one_out_outputs_are_kept_and_match_refits(wine):
    # several outputs: the outputs moved by each row's Newton step, kept after the
    # first call (n x K floats); a caller editing an answer does not edit the next
    X, y, _, _ = wine
    clf = InfluenceLogisticRegression(C=0.5, **NEWTON).fit(X, y)
    first = clf.loo_decision_function()
    first_copy = first.copy()
    first[:] = 0.0
    again = clf.loo_decision_function()
    np.testing.assert_array_equal(again, first_copy)
    rows = np.argsort(clf.self_influence())[:4]
    exact = np.array([_refit_without(clf, i).decision_function(X[i:i + 1])[0]
                      for i in rows])
    # softmax outputs are defined up to a common shift per row
    def centred(F):
        return F - F.mean(axis=1, keepdims=True)

    full = clf.decision_function(X[rows])
    newton_error = np.abs(centred(again[rows]) - centred(exact)).max(axis=1)
    assert np.all(newton_error < 0.2 * np.abs(centred(full) - centred(exact)).max(axis=1))
    np.testing.assert_allclose(clf.loo_predict_proba(),
                               softmax(again, axis=1), rtol=1e-12)


def test_approximate_cross_val_predict(diabetes, wine):
    X, y, _, _ = diabetes
    reg = InfluenceRidge(alpha=0.3).fit(X, y)
    np.testing.assert_allclose(reg.approx_cross_val_predict(),
                               cross_val_predict(Ridge(alpha=0.3), X, y), rtol=1e-9)
    Xw, yw, _, _ = wine
    clf = InfluenceLogisticRegression(**NEWTON).fit(Xw, yw)
    exact = cross_val_predict(clone(clf), Xw, yw, method="predict_proba")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one = clf.approx_cross_val_predict("predict_proba")
    assert np.abs(one - exact).mean() < 0.01
    np.testing.assert_allclose(clf.approx_cross_val_predict("predict_proba", newton_steps=8),
                               exact, atol=1e-8)
    # "auto" steps until the refits; a fixed count that stops far from them says so,
    # by about how much (the next step's move), and one that does not stays silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(
            clf.approx_cross_val_predict("predict_proba", newton_steps="auto"), exact,
            atol=1e-8)
    far = [str(w.message) for w in caught if "short of the refits" in str(w.message)]
    assert len(far) == 1 and np.abs(one - exact).max() > 0.05  # the one step is far off
    # the figure it quotes is the size of the error left, in decision values
    said = float(re.search(r"by up to ([\d.e+-]+)", far[0]).group(1))
    decision = cross_val_predict(clone(clf), Xw, yw, method="decision_function")
    left = clf.approx_cross_val_predict("decision_function") - decision
    left -= left.mean(axis=1, keepdims=True)  # softmax outputs: up to a shift per row
    assert 0.2 < said / np.abs(left).max() < 5  # 2.0 here: a chord step, H at the fit
    Xc, yc = Xw[:, :4], yw
    weak = InfluenceLogisticRegression(C=100.0, **NEWTON).fit(Xc, yc)
    refits = cross_val_predict(clone(weak), Xc, yc, method="decision_function")
    with pytest.warns(UserWarning, match=r"1 Newton step per fold leaves .* by up to "):
        short = weak.approx_cross_val_predict("decision_function")
    assert np.abs(short - refits).max() > 1e-2
    np.testing.assert_allclose(weak.approx_cross_val_predict(
        "decision_function", newton_steps="auto"), refits, rtol=1e-7, atol=1e-7)
    # ill-conditioned (C=1000): "auto" runs to the float floor (a fixed gradient size of
    # 1e-10 stopped 1e-5 short of the refits)
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xc = StandardScaler().fit_transform(Xc)
    weaker = InfluenceLogisticRegression(C=1000.0, solver="newton-cholesky", tol=1e-14,
                                         max_iter=1000).fit(Xc, yc)
    exact = cross_val_predict(clone(weaker), Xc, yc, method="decision_function")
    np.testing.assert_allclose(
        weaker.approx_cross_val_predict("decision_function", newton_steps="auto"), exact,
        atol=1e-8)
    with pytest.raises(ValueError, match="positive integer or 'auto'"):
        weak.approx_cross_val_predict(newton_steps="many")

    with pytest.raises(ValueError, match="newton_steps"):
        clf.approx_cross_val_predict(newton_steps=0)
    # predict_log_proba, as cross_val_predict takes it: the log, without rounding to 0
    log = clf.approx_cross_val_predict("predict_log_proba", newton_steps=8)
    np.testing.assert_allclose(log, cross_val_predict(clone(clf), Xw, yw,
                                                      method="predict_log_proba"), atol=1e-7)
    np.testing.assert_allclose(np.exp(log), clf.approx_cross_val_predict(
        "predict_proba", newton_steps=8), rtol=1e-12)
    with pytest.raises(ValueError, match="no probabilities"):
        reg.approx_cross_val_predict("predict_log_proba")
    # a fold that holds a whole class leaves a refit with no optimum: refused, as
    # cross_val_predict refuses it for two classes (its probabilities drifted to 0
    # with each Newton step, silently)
    from sklearn.model_selection import KFold

    order = np.argsort(yw, kind="stable")
    sorted_clf = clone(clf).fit(Xw[order], yw[order])
    with pytest.raises(ValueError, match=r"outside test fold \d hold no row of class"):
        sorted_clf.approx_cross_val_predict("predict_proba", cv=KFold(3))
    # group splitters take groups, as cross_val_predict does
    from sklearn.model_selection import GroupKFold

    groups = np.arange(len(y)) % 7
    np.testing.assert_allclose(
        reg.approx_cross_val_predict(cv=GroupKFold(3), groups=groups),
        cross_val_predict(Ridge(alpha=0.3), X, y, cv=GroupKFold(3), groups=groups), rtol=1e-9)
    with pytest.raises(ValueError, match="one group label per training row"):
        reg.approx_cross_val_predict(cv=GroupKFold(3), groups=groups[:-1])
    # folds that do not partition the rows are refused, as by cross_val_predict (rows in
    # no test fold were left as uninitialised memory)
    from sklearn.model_selection import LeavePGroupsOut, ShuffleSplit

    for cv, kw in [(ShuffleSplit(2, test_size=0.2, random_state=0), {}),
                   (LeavePGroupsOut(2), {"groups": groups})]:
        with pytest.raises(ValueError, match="partition the training rows"):
            reg.approx_cross_val_predict(cv=cv, **kw)
        with pytest.raises(ValueError, match="partitions"):
            cross_val_predict(Ridge(alpha=0.3), X, y, cv=cv, **kw)


def test_auto_newton_steps_that_run_out_warn_once(wine, monkeypatch):
    import skinfluence.predictions as predictions
    from sklearn.exceptions import ConvergenceWarning

    Xw, yw, _, _ = wine
    weak = InfluenceLogisticRegression(C=100.0, **NEWTON).fit(Xw[:, :4], yw)
    monkeypatch.setattr(predictions, "CV_MAX_NEWTON_STEPS", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        weak.approx_cross_val_predict(newton_steps="auto")
    short = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(short) == 1 and short[0].filename == __file__, [str(w.message) for w in caught]


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # sklearn's refits
def test_cross_val_rows_that_only_their_fold_identifies_are_nan(diabetes, cancer):
    """A feature seen in one row only, with no penalty: without that row's fold the
    refit is not unique along the feature's coefficient. That row's prediction is NaN
    with a warning naming it; the other rows of its fold, which the coefficient does
    not move, match the refits. (Before, it was predicted by the fitted coefficient,
    diverged to about 100: probability 1.0 for a label the refits give 1e-31.)"""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y, _, _ = diabetes
    X = np.c_[X, np.zeros(len(y))]
    X[7, -1] = 1.0  # the only row with the last feature
    reg = InfluenceRidge(alpha=0.0).fit(X, y)
    cv = KFold(5)
    with pytest.warns(RuntimeWarning, match=r"1 training row is .*positions \[7\]"):
        approx = reg.approx_cross_val_predict(cv=cv)
    exact = cross_val_predict(LinearRegression(), X, y, cv=cv)  # minimum-norm refits
    assert np.flatnonzero(np.isnan(approx)).tolist() == [7]
    keep = np.arange(len(y)) != 7
    np.testing.assert_allclose(approx[keep], exact[keep], rtol=1e-8)

    Xc, yc, _, _ = cancer
    Xc = np.c_[Xc[:, :3], np.zeros(len(yc))]
    i = int(np.flatnonzero(yc == 0)[0])
    Xc[i, -1], yc = 1.0, yc.copy()
    yc[i] = 1  # mislabelled, and fitted only through its own feature
    clf = InfluenceLogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12,
                                      max_iter=1000).fit(Xc, yc)
    with pytest.warns(RuntimeWarning, match=rf"positions \[{i}\]"):
        approx = clf.approx_cross_val_predict("decision_function", newton_steps=4)
    assert np.flatnonzero(np.isnan(approx)).tolist() == [i]
    for train, test in StratifiedKFold(5).split(Xc, yc):
        if i in test:
            refit = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12,
                                       max_iter=1000).fit(Xc[train], yc[train])
            rows = test[test != i]
            np.testing.assert_allclose(approx[rows], refit.decision_function(Xc[rows]),
                                       rtol=1e-5, atol=1e-6)
    # labels too: no class for the row without an answer (it was classes_[0])
    with pytest.warns(RuntimeWarning, match=rf"positions \[{i}\]"):
        labels = clf.approx_cross_val_predict("predict", newton_steps=4)
    assert labels[i] is None and set(np.delete(labels, i)) <= set(clf.classes_)
    with pytest.warns(RuntimeWarning, match="NaN"):
        issues = find_label_issues(clf)
    assert issues["position"].iloc[-1] == i and issues["suggested_label"].iloc[-1] is None
    assert np.isfinite(issues["self_confidence"].iloc[:-1]).all()
    assert issues["is_issue"].any()  # the thresholds are not NaN


def test_explanations_answer_prediction_questions_on_raw_rows(cancer):
    from sklearn.pipeline import make_pipeline

    X, y, Xt, yt = cancer
    raw, raw_t = X * 3.0 + 1.0, Xt * 3.0 + 1.0
    pipe = make_pipeline(StandardScaler(), InfluenceLogisticRegression(**NEWTON)).fit(raw, y)
    ex = explain(pipe)
    np.testing.assert_allclose(ex.influence_on_prediction(raw_t[:3]),
                               pipe[-1].influence_on_prediction(pipe[0].transform(raw_t[:3])))
    np.testing.assert_array_equal(ex.loo_predict(), pipe[-1].loo_predict())


def test_influence_on_a_function_is_exact_for_least_squares(diabetes):
    """Newton kind of a group's mean prediction against actual refits (exact for Ridge)."""
    import autograd.numpy as anp

    X, y, Xt, yt = diabetes
    reg = InfluenceRidge(alpha=0.3).fit(X, y)

    def mean_prediction(F):
        return anp.mean(F[..., 0], axis=-1)

    newton = reg.influence_on_function(mean_prediction, Xt, kind="newton")
    for i in (4, 150):
        actual = _refit_without(reg, i).predict(Xt).mean() - reg.predict(Xt).mean()
        np.testing.assert_allclose(newton[i], actual, rtol=1e-8, atol=1e-10)


def test_one_output_loo_by_leverages_equals_the_newton_steps(cancer, diabetes):
    """With one output, leave-one-out outputs come from the leverages alone; they equal
    the outputs moved by the full Newton steps (influence_on_params(kind="newton")),
    with sample weights, a GLM's penalty share, and NaN for a row of leverage 1."""
    from skinfluence import InfluencePoissonRegressor

    def by_steps(est, X):
        steps = est.influence_on_params(kind="newton")
        F = X @ est.coef_.ravel() + np.ravel(est.intercept_)[0]
        d = X.shape[1]
        return F + np.einsum("id,id->i", X, steps[:, :d]) + steps[:, d]

    X, y, _, _ = cancer
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(clf.loo_decision_function(), by_steps(clf, X), rtol=1e-9,
                               atol=1e-12)
    Xd, yd, _, _ = diabetes
    counts = np.round(np.exp(yd / 100.0))
    glm = InfluencePoissonRegressor(alpha=0.05, max_iter=1000, tol=1e-12).fit(Xd, counts)
    assert glm._state().share is not None
    np.testing.assert_allclose(np.log(glm.loo_predict()), by_steps(glm, Xd), rtol=1e-9)
    only_row_0 = np.zeros((60, 1))
    only_row_0[0] = 1.0
    Xl = np.hstack([Xd[:60], only_row_0])
    reg = InfluenceRidge(alpha=0.0, solver="cholesky").fit(Xl, yd[:60])
    with pytest.warns(RuntimeWarning, match="leverage 1"):
        loo = reg.loo_predict()
    with pytest.warns(RuntimeWarning, match="leverage 1"):
        ref = by_steps(reg, Xl)
    assert np.isnan(loo[0]) and np.isnan(ref[0])
    np.testing.assert_allclose(loo[1:], ref[1:], rtol=1e-9)
    # and an independent oracle: least squares without the row, refitted
    from sklearn.linear_model import LinearRegression

    for i in (3, 41):
        keep = np.arange(60) != i
        refit = LinearRegression().fit(Xl[keep], yd[:60][keep])
        np.testing.assert_allclose(loo[i], refit.predict(Xl[i:i + 1])[0], rtol=1e-7)



def test_folds_of_explained_classifiers_are_stratified_and_training_sets_checked():
    """A scikit-learn classifier read by explain() gets StratifiedKFold for cv=int, as
    cross_val_predict (it got KFold: 0.25 off in probabilities on class-sorted rows);
    explicit (train, test) pairs whose training rows are not the rest are refused
    (the train halves were ignored), and out-of-range rows are named."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    lr = LogisticRegression(tol=1e-10).fit(X, y)
    approx = explain(lr, X, y).approx_cross_val_predict("predict_proba", 5,
                                                        newton_steps="auto")
    refits = cross_val_predict(LogisticRegression(tol=1e-10), X, y, cv=5,
                               method="predict_proba")
    np.testing.assert_allclose(approx, refits, atol=1e-6)
    clf = InfluenceLogisticRegression().fit(X[:30], y[:30])
    idx = np.random.default_rng(0).permutation(30)
    halves = [(idx[15:], idx[:15]), (idx[:15], idx[15:])]
    _ = clf.approx_cross_val_predict("predict_proba", halves, newton_steps="auto")  # accepted
    with pytest.raises(ValueError, match="Fold 0 trains on 10 rows, not on the 15"):
        clf.approx_cross_val_predict("predict_proba", [(idx[20:], idx[:15]), halves[1]])
    mask = np.zeros(30, bool)
    mask[idx[:15]] = True
    with pytest.raises(ValueError, match="boolean mask; pass positions"):
        clf.approx_cross_val_predict("predict_proba", [(~mask, mask), (mask, ~mask)])
    with pytest.raises(ValueError, match=r"Fold 1's test rows .* 0 \.\. 29 .*\[30, 31"):
        clf.approx_cross_val_predict("predict_proba", [halves[0], (idx[:15], np.arange(15, 35))])


def test_leave_one_out_of_the_only_row_of_a_class_is_nan_and_said():
    """Fitted without the one row of class 2, a model has no class 2 (the refit knows
    two classes); one Newton step gave that row a finite 0.06 for it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.r_[np.zeros(20), np.ones(19), 2].astype(int)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    assert len(clone(clf).fit(X[:-1], y[:-1]).classes_) == 2
    with pytest.warns(RuntimeWarning, match=r"alone carry their class \(positions \[39\]\)"):
        proba = clf.loo_predict_proba()
    assert np.isnan(proba[-1]).all() and np.isfinite(proba[:-1]).all()
    # rows of the other classes still match their refits
    refit = clone(clf).fit(X[1:], y[1:])
    np.testing.assert_allclose(proba[0], refit.predict_proba(X[:1])[0], atol=0.02)
    with pytest.warns(RuntimeWarning, match="alone carry"):
        assert clf.loo_predict()[-1] is None


def test_leave_one_out_of_the_only_row_of_a_binary_class_is_nan_too():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(2).normal(size=(40, 2))
    y = np.where(np.arange(40) == 5, "pos", "neg")
    for ex in (explain(LogisticRegression(tol=1e-12).fit(X, y), X, y),
               InfluenceLogisticRegression(**NEWTON).fit(X, y)):
        with pytest.warns(RuntimeWarning, match=r"alone carry their class \(positions \[5\]\)"):
            proba = ex.loo_predict_proba()  # [0.989, 0.011] before
        assert np.isnan(proba[5]).all() and np.isfinite(np.delete(proba, 5, axis=0)).all()
