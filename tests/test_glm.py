"""Poisson, gamma and Tweedie regression: drop-ins, explain(), oracle, statsmodels, refits."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import (
    InfluenceGammaRegressor,
    InfluencePoissonRegressor,
    InfluenceTweedieRegressor,
    explain,
)

from .oracle import glm_oracle

NEWTON = dict(solver="newton-cholesky", tol=1e-13, max_iter=1000)


def _data(family, n=160, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    eta = 0.3 + X @ np.linspace(0.4, -0.3, d)
    mu = np.exp(eta)
    y = {
        "poisson": lambda: rng.poisson(mu).astype(float),
        "gamma": lambda: rng.gamma(2.0, mu / 2.0),
        "tweedie": lambda: rng.poisson(mu / 2) * rng.gamma(2.0, 1.0, n),
        "normal": lambda: eta + rng.normal(size=n),
    }[family]()
    return X, y, rng.uniform(0.5, 2.0, n)


# family -> (drop-in, scikit-learn parent, parameters, power, link)
MODELS = {
    "poisson": (InfluencePoissonRegressor, PoissonRegressor, {}, 1.0, "log"),
    "gamma": (InfluenceGammaRegressor, GammaRegressor, {}, 2.0, "log"),
    "tweedie": (InfluenceTweedieRegressor, TweedieRegressor, {"power": 1.5}, 1.5, "log"),
    "normal": (InfluenceTweedieRegressor, TweedieRegressor, {"power": 0.0}, 0.0, "identity"),
}


@parametrize_with_checks([
    InfluencePoissonRegressor(), InfluenceGammaRegressor(),
    InfluenceTweedieRegressor(power=1.5), InfluenceTweedieRegressor(alpha=0.1, power=0),
])
def test_glms_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("family", list(MODELS))
def test_drop_in_equals_parent(family):
    ours, parent, params, _, _ = MODELS[family]
    X, y, sw = _data(family)
    a = ours(alpha=0.1, **params).fit(X, y, sample_weight=sw)
    b = parent(alpha=0.1, **params).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.intercept_ == b.intercept_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.score(X, y, sample_weight=sw) == b.score(X, y, sample_weight=sw)


@pytest.mark.parametrize("family", list(MODELS))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_influence_equals_autograd_oracle(family, fit_intercept):
    """Up-weighting a row is the derivative of scikit-learn's own refit in its weight
    (the penalty's share included), from a plainly written objective."""
    ours, _, params, power, link = MODELS[family]
    X, y, sw = _data(family, n=80, d=3)
    est = ours(alpha=0.05, fit_intercept=fit_intercept, **NEWTON, **params).fit(
        X, y, sample_weight=sw)
    oracle_params, oracle_loss = glm_oracle(est, X, y, sw, X[:5], y[:5], power, link)
    np.testing.assert_allclose(est.influence_on_params(), oracle_params, rtol=1e-7,
                               atol=1e-9 * np.abs(oracle_params).max())
    infl = est.influence_on_loss(X[:5], y[:5])
    np.testing.assert_allclose(infl, oracle_loss, rtol=1e-7, atol=1e-9 * np.abs(infl).max())
    # self-influence is the diagonal; removal is up-weighting by -s_i/n
    full = est.influence_on_loss(X, y)
    np.testing.assert_allclose(est.self_influence(), np.diag(full), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.self_influence(kind="remove"),
                               -sw / len(y) * np.diag(full), rtol=1e-9, atol=1e-12)


def test_upweight_is_the_derivative_of_a_refit():
    """Finite differences of PoissonRegressor refits with one weight changed."""
    X, y, sw = _data("poisson", n=200)
    kw = dict(alpha=0.05, **NEWTON)
    est = InfluencePoissonRegressor(**kw).fit(X, y, sample_weight=sw)
    base = np.r_[est.coef_, est.intercept_]
    infl = est.influence_on_params()
    for i in (3, 50):
        s2 = sw.copy()
        s2[i] += 1e-4
        ref = PoissonRegressor(**kw).fit(X, y, sample_weight=s2)
        fd = (np.r_[ref.coef_, ref.intercept_] - base) / 1e-4 * len(y)
        np.testing.assert_allclose(fd, infl[i], rtol=1e-4)


def _statsmodels_fit(family, X, y):
    sm = pytest.importorskip("statsmodels.api")
    fam = {"poisson": sm.families.Poisson(),
           "gamma": sm.families.Gamma(sm.families.links.Log()),
           "normal": sm.families.Gaussian()}[family]
    return sm.GLM(y, sm.add_constant(X), family=fam).fit(tol=1e-13)


def _theirs(ours_params):
    """Ours theta_-i - theta_hat (constant last) as statsmodels' d_params."""
    return -np.column_stack([ours_params[:, -1], ours_params[:, :-1]])


@pytest.mark.parametrize("family", ["poisson", "gamma", "normal"])
def test_unpenalised_matches_statsmodels(family):
    from statsmodels.stats.outliers_influence import MLEInfluence

    ours, _, params, _, _ = MODELS[family]
    X, y, _ = _data(family, n=200, d=3, seed=1)
    est = ours(alpha=0, **NEWTON, **params).fit(X, y)
    res = _statsmodels_fit(family, X, y)
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], res.params, rtol=1e-9,
                               atol=1e-12)
    infl = res.get_influence(observed=True)
    ours_d = _theirs(est.influence_on_params(kind="newton"))
    cooks = est.cooks_distance()
    if family == "gamma":
        # a non-canonical link: GLMInfluence's d_params and Cook's distance use the
        # expected information; the exact one-step change with the observed Hessian
        # is MLEInfluence's, and Cook's distance in that metric
        d_params = MLEInfluence.d_params.func(infl)
        H = -res.model.hessian(res.params, observed=True)
        ref_cooks = np.einsum("ip,pq,iq->i", d_params, H, d_params) / d_params.shape[1]
    else:
        d_params, ref_cooks = infl.d_params, infl.cooks_distance[0]
    np.testing.assert_allclose(ours_d, d_params, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(cooks, ref_cooks, rtol=1e-8, atol=1e-12)


def test_gamma_newton_is_closer_to_refits_than_statsmodels_glm_d_params():
    X, y, _ = _data("gamma", n=200, d=3, seed=1)
    est = InfluenceGammaRegressor(alpha=0, **NEWTON).fit(X, y)
    ours = _theirs(est.influence_on_params(kind="newton"))
    theirs = _statsmodels_fit("gamma", X, y).get_influence().d_params
    base = np.r_[est.intercept_, est.coef_]
    err_ours, err_theirs = [], []
    for i in np.argsort(-np.abs(ours).sum(axis=1))[:6]:
        keep = np.arange(len(y)) != i
        ref = GammaRegressor(alpha=0, **NEWTON).fit(X[keep], y[keep])
        exact = base - np.r_[ref.intercept_, ref.coef_]
        err_ours.append(np.abs(ours[i] - exact).max())
        err_theirs.append(np.abs(theirs[i] - exact).max())
    assert np.median(err_ours) * 10 < np.median(err_theirs)


def test_ols_cooks_distance_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    X, y, _ = _data("normal", n=120, d=3)
    est = InfluenceTweedieRegressor(power=0, alpha=0, **NEWTON).fit(X, y)
    ols = sm.OLS(y, sm.add_constant(X)).fit().get_influence()
    np.testing.assert_allclose(est.cooks_distance(), ols.cooks_distance[0], rtol=1e-8)
    # least squares: the Newton change is the exact leave-one-out change
    np.testing.assert_allclose(_theirs(est.influence_on_params(kind="newton")), ols.dfbeta,
                               rtol=1e-7, atol=1e-12)


def test_cooks_distance_of_several_targets_weighs_each_on_its_own_scale():
    """Each least-squares target has its own dispersion (on n - P/K degrees of freedom):
    a duplicated target, or one in other units, leaves D as statsmodels gives it for
    one (it was 0.438 of it, pooled on n - P); a constant target is refused (NaN)."""
    sm = pytest.importorskip("statsmodels.api")
    from skinfluence import InfluenceRidge

    X, y, _ = _data("normal", n=100, d=10)
    ols = sm.OLS(y, sm.add_constant(X)).fit().get_influence().cooks_distance[0]
    for Y in (np.c_[y, y], np.c_[y, 100.0 * y + 3.0]):
        np.testing.assert_allclose(InfluenceRidge(alpha=0).fit(X, Y).cooks_distance(), ols,
                                   rtol=1e-8)
    # 18 rows, 11 parameters per target: 7 degrees of freedom each (refused as -4)
    assert np.isfinite(InfluenceRidge(alpha=0).fit(X[:18], np.c_[y, y][:18])
                       .cooks_distance()).all()
    for est in (InfluenceRidge(), InfluenceGammaRegressor(**NEWTON)):
        with pytest.raises(ValueError, match="reproduces every target.*constant"):
            est.fit(X, np.full(len(y), 3.0)).cooks_distance()


def test_newton_removal_tracks_penalised_poisson_refits():
    X, y, _ = _data("poisson", n=300, d=5, seed=2)
    kw = dict(alpha=0.05, **NEWTON)
    est = InfluencePoissonRegressor(**kw).fit(X[:250], y[:250])
    Xt, yt = X[250:253], y[250:253]
    newton = est.influence_on_loss(Xt, yt, kind="newton")
    base = est.loss_values(Xt, yt)
    for t in range(3):
        top = np.argsort(-np.abs(newton[t]))[:20]
        actual = []
        for i in top:
            keep = np.arange(250) != i
            ref = InfluencePoissonRegressor(**kw).fit(X[:250][keep], y[:250][keep])
            actual.append(ref.loss_values(Xt[t:t + 1], yt[t:t + 1])[0] - base[t])
        assert np.corrcoef(newton[t, top], actual)[0, 1] >= 0.99


def test_approximate_cross_validation_reaches_refits():
    X, y, _ = _data("poisson", n=200)
    kw = dict(alpha=0.05, **NEWTON)
    est = InfluencePoissonRegressor(**kw).fit(X, y)
    exact = cross_val_predict(PoissonRegressor(**kw), X, y, cv=5)
    np.testing.assert_allclose(est.approx_cross_val_predict(cv=5, newton_steps=8), exact,
                               rtol=1e-8)
    one = est.approx_cross_val_predict(cv=5)
    assert np.abs(one - exact).max() < 0.05 * np.abs(exact - est.predict(X)).max()


@pytest.mark.parametrize("parent,family,params", [
    (PoissonRegressor, "poisson", {}), (GammaRegressor, "gamma", {}),
    (TweedieRegressor, "tweedie", {"power": 1.5}),
])
def test_explain_equals_drop_in(parent, family, params):
    X, y, sw = _data(family)
    ours = MODELS[family][0](alpha=0.1, **NEWTON, **params).fit(X, y, sample_weight=sw)
    exp = explain(parent(alpha=0.1, **NEWTON, **params).fit(X, y, sample_weight=sw), X, y,
                  sample_weight=sw)
    for a, b in [
        (exp.influence_on_loss(X[:4], y[:4]), ours.influence_on_loss(X[:4], y[:4])),
        (exp.influence_on_params(kind="newton"), ours.influence_on_params(kind="newton")),
        (exp.self_influence(), ours.self_influence()),
        (exp.cooks_distance(), ours.cooks_distance()),
        (exp.influence_on_prediction(X[:3]), ours.influence_on_prediction(X[:3])),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def _policies(n=300, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "region": rng.choice(["north", "south", "city"], n),
        "age": rng.integers(18, 80, n).astype(float),
    }, index=pd.Index([f"P{i:04d}" for i in range(n)], name="policy"))
    rate = np.exp(-1.5 + 0.6 * (df["region"] == "city") - 0.01 * (df["age"] - 40))
    return df, pd.Series(rng.poisson(rate), index=df.index, name="claims")


def test_pipeline_with_labels_and_names():
    df, y = _policies()
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["region"]),
                             ("num", StandardScaler(), ["age"])])
    pipe = make_pipeline(pre, PoissonRegressor(alpha=0.01, **NEWTON)).fit(df, y)
    exp = explain(pipe, df, y)
    cooks = exp.cooks_distance(as_frame=True)
    assert cooks.index.name == "policy" and cooks.index[0] == "P0000"
    assert list(exp.parameter_names()) == ["region_city", "region_north", "region_south",
                                           "age", "intercept"]
    table = exp.influence_on_prediction(df.iloc[:2], as_frame=True)
    assert list(table.index) == ["P0000", "P0001"] and table.shape == (2, len(df))
    # the drop-in in the same pipeline says the same
    pipe2 = make_pipeline(pre, InfluencePoissonRegressor(alpha=0.01, **NEWTON)).fit(df, y)
    np.testing.assert_allclose(explain(pipe2).cooks_distance(), cooks.to_numpy(), rtol=1e-9)


def test_targets_outside_the_family_are_refused():
    X, y, _ = _data("poisson")
    with pytest.raises(ValueError, match=r"Poisson family's domain \(y >= 0\)"):
        InfluencePoissonRegressor().fit(X, y - 5)
    est = InfluenceGammaRegressor(**NEWTON).fit(X, y + 1)
    with pytest.raises(ValueError, match=r"y_test has 1 value.*gamma.*y > 0"):
        est.influence_on_loss(X[:2], [1.0, 0.0])
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.influence_on_loss(X[:2], [1.0, np.nan])
    with pytest.raises(ValueError, match="negative"):
        InfluencePoissonRegressor().fit(X, y, sample_weight=-np.ones(len(y)))
    fitted = PoissonRegressor(**NEWTON).fit(X, y)
    with pytest.raises(ValueError, match="y_train has .*Poisson"):
        explain(fitted, X, y - 5)


def test_inputs_unchanged_and_no_warning_at_a_tight_fit():
    X, y, sw = _data("tweedie")
    X0, y0, sw0 = X.copy(), y.copy(), sw.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = InfluenceTweedieRegressor(power=1.5, alpha=0.1, **NEWTON).fit(
            X, y, sample_weight=sw)
        est.influence_on_loss(X[:3], y[:3], kind="newton")
        est.loo_predict()
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(sw, sw0)


def test_undefined_means_and_overflow_are_refused_not_nan():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3, size=(200, 3))
    y = rng.poisson(1.0 + X[:, 0]) * rng.gamma(2.0, 1.0, 200)
    ident = TweedieRegressor(power=1.5, link="identity", alpha=1e-3, **NEWTON).fit(X, y)
    ex = explain(ident, X, y)
    bad = np.array([[0.0, 0.0, 0.0]]) - 50.0 * np.sign(ident.coef_)[None, :]
    assert ident.predict(bad)[0] <= 0
    with pytest.raises(ValueError, match=r"predicted mean is .* <= 0 .*link='log'"):
        ex.influence_on_loss(bad, [1.0])
    with pytest.raises(ValueError, match=r"predicted mean is .* <= 0"):
        ex.influence_on_prediction(bad)
    X2, y2, _ = _data("poisson")
    est = InfluencePoissonRegressor(alpha=0.01, **NEWTON).fit(X2, y2)
    with pytest.raises(ValueError, match="overflows float64"):
        est.influence_on_loss(np.full((1, 4), 1e5), [1.0])
    with pytest.raises(ValueError, match="y contains values larger than"):
        est.influence_on_loss(X2[:2], [1e308, 1.0])
    y_big = y2.copy()
    y_big[0] = 1e300
    with pytest.raises(ValueError, match="larger than"):
        InfluencePoissonRegressor().fit(X2, y_big)
    with pytest.raises(ValueError, match="sample_weight contains values larger than"):
        InfluencePoissonRegressor().fit(X2, y2, sample_weight=np.full(len(y2), 1e300))
    with pytest.raises(ValueError, match="zero on every row"):
        InfluencePoissonRegressor().fit(X2, 0 * y2)


def test_explain_refuses_misaligned_training_labels_and_bad_weights():
    df, y = _policies()
    X = pd.get_dummies(df, dtype=float)
    w = pd.Series(np.linspace(0.5, 1.5, len(y)), index=y.index)
    reg = PoissonRegressor(alpha=0.01, **NEWTON).fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match=r"y's index .* another order"):
        explain(reg, X, y.sample(frac=1, random_state=0), sample_weight=w)
    with pytest.raises(ValueError, match=r"sample_weight's index .* another order"):
        explain(reg, X, y, sample_weight=w.sample(frac=1, random_state=0))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(300,\)"):
        explain(reg, X, y, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        explain(reg, X, y, sample_weight=np.r_[np.nan, np.ones(len(y) - 1)])
    # scikit-learn's warning and error both name the user's estimator
    with pytest.raises(ValueError, match="PoissonRegressor is expecting"), pytest.warns(
            UserWarning, match="but PoissonRegressor was fitted with feature names"):
        explain(reg, X, y, sample_weight=w).influence_on_loss(X.iloc[:2, :3].to_numpy(),
                                                              y.iloc[:2])
    with pytest.raises(TypeError, match="InfluencePoissonRegressor"):
        explain(reg)
    # the drop-in keeps its weights: passing the same ones again is fine, others are not
    ours = InfluencePoissonRegressor(alpha=0.01, **NEWTON).fit(X, y, sample_weight=w)
    explain(ours, sample_weight=w)
    with pytest.raises(ValueError, match="differ"):
        explain(ours, sample_weight=2 * w)


def test_flip_sets_and_out_of_sample_tables_for_regressors():
    from skinfluence import smallest_flip_set

    df, y = _policies()
    X = pd.get_dummies(df, dtype=float)
    est = InfluencePoissonRegressor(alpha=0.01, **NEWTON).fit(X, y)
    with pytest.raises(ValueError, match="no sign to flip.*coef="):
        smallest_flip_set(est, X.iloc[[0]])
    flip = smallest_flip_set(est, coef="age", max_fraction=0.5)
    assert flip.quantity == "coef[age]"
    # an independent refit without the reported rows gives the reported coefficient
    keep = ~X.index.isin(flip.labels)
    ref = PoissonRegressor(alpha=0.01, **NEWTON).fit(X[keep], y[keep])
    age = ref.coef_[list(X.columns).index("age")]
    np.testing.assert_allclose(age, flip.value_after, rtol=1e-6)
    assert (np.sign(age) != np.sign(flip.value_before)) == flip.confirmed
    loo = est.loo_predict(as_frame=True)
    assert loo.index.equals(X.index) and loo.name == "loo_predict"
    np.testing.assert_allclose(loo.to_numpy(), est.loo_predict())
    cv = explain(est).approx_cross_val_predict(as_frame=True)
    assert cv.index.equals(X.index)


@pytest.mark.parametrize("family", ["gamma", "normal"])
def test_cooks_distance_leaves_zero_weight_rows_out_of_the_dispersion(family):
    # weight 0 removes a row everywhere else; the dispersion's degrees of freedom too
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 3))
    y = np.exp(0.3 * X[:, 0]) * rng.gamma(5.0, 0.2, 100)
    w = np.r_[np.zeros(40), np.ones(60)]
    make = (lambda: GammaRegressor(alpha=0.01, solver="newton-cholesky", tol=1e-12)) \
        if family == "gamma" else (lambda: TweedieRegressor(power=0, alpha=0.01,
                                                            solver="newton-cholesky",
                                                            tol=1e-12))
    weighted = explain(make().fit(X, y, sample_weight=w), X, y, sample_weight=w)
    dropped = explain(make().fit(X[40:], y[40:]), X[40:], y[40:])
    np.testing.assert_allclose(weighted.cooks_distance()[40:], dropped.cooks_distance(),
                               rtol=1e-6)


def test_a_fit_that_left_the_family_domain_is_refused():
    # scikit-learn's identity-link Poisson fit ran off (every mean negative): no optimum
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = rng.poisson(np.exp(0.4 * X[:, 0] - 0.2 * X[:, 1])).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = TweedieRegressor(power=1, link="identity", alpha=0.01, solver="newton-cholesky",
                               tol=1e-12).fit(X, y)
    if np.all(reg.predict(X) > 0):  # pragma: no cover - scikit-learn's fit stayed inside
        pytest.skip("the fit stayed in the domain on this scikit-learn")
    with pytest.raises(ValueError, match="At the training rows.*The predicted mean"):
        explain(reg, X, y).self_influence()


def test_dispersion_that_overflows_is_refused_not_nan():
    # a gamma target far from its mean: Pearson's squared residual passes 1e308
    from skinfluence.diagnostics import dispersion

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = rng.gamma(2.0, 1.0, 60)
    reg = InfluenceGammaRegressor(alpha=0.01, solver="newton-cholesky", tol=1e-12).fit(X, y)
    state = reg._state()
    assert np.isfinite(dispersion(reg, state))
    reg._fit_Y = reg._fit_Y.copy()
    reg._fit_Y[0] = 1e200  # as if the target were that far: the estimate overflows
    with pytest.raises(ValueError, match="dispersion overflows"):
        dispersion(reg, state)
