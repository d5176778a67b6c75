"""Perturbation influence, Newton removal, validation and the paper's applications."""

import warnings

import numpy as np
import pytest
from autograd import grad
from sklearn.base import clone

from skinfluence import (
    InfluenceLogisticRegression,
    InfluenceRidge,
    RBFSmoothHingeSVC,
    aggregate_influence,
    explain,
    label_audit,
    responsible_features,
    retrain_without,
    top_training_rows,
    training_set_attack,
)

from .oracle import oracle_quantities, per_sample_logistic_loss, theta_of

NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


# ------------------------------------------------------ perturbation influence
def _oracle_pert(clf, X, y, Xt, yt):
    """-d/dx_i [grad_theta l(x_i, y_i)^T H^+ grad_theta l(z_test)], one row at a time."""
    import autograd.numpy as anp

    H, G, Gt, _ = oracle_quantities(clf, X, y, np.ones(len(y)), Xt, yt)
    V = np.linalg.pinv(H, rcond=1e-10, hermitian=True) @ Gt.T
    K = 1 if len(clf.classes_) == 2 else len(clf.classes_)
    yi = np.searchsorted(clf.classes_, y)
    theta = theta_of(clf)

    def loss(th, x, i):
        return per_sample_logistic_loss(th, anp.reshape(x, (1, -1)), yi[i : i + 1], K,
                                        clf.fit_intercept)[0]

    out = np.empty((len(yt), len(y), X.shape[1]))
    for j in range(len(yt)):
        for i in range(len(y)):
            out[j, i] = -grad(lambda x: anp.dot(grad(loss)(theta, x, i), V[:, j]))(X[i])
    return out


@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_perturbation_influence_matches_autograd_oracle(request, data):
    X, y, Xt, yt = request.getfixturevalue(data)
    X, y, Xt, yt = X[:60], y[:60], Xt[:2], yt[:2]
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ours = clf.perturbation_influence(Xt, yt)
    expected = _oracle_pert(clf, X, y, Xt, yt)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


def test_perturbation_influence_finite_difference_of_refit(cancer):
    """Move x_i by delta, refit: the test loss moves by (s_i/n) I_pert . delta."""
    X, y, Xt, yt = cancer
    X, y = X[:150], y[:150]
    clf = InfluenceLogisticRegression(C=0.5, **NEWTON).fit(X, y)
    t = np.argmax(clf.loss_values(Xt, yt))
    pert = clf.perturbation_influence(Xt[t : t + 1], yt[t : t + 1])[0]
    n = len(y)
    for i in np.argsort(-np.linalg.norm(pert, axis=1))[:3]:
        delta = 1e-4 * np.sign(pert[i])
        changes = []
        for sgn in (1, -1):
            Xp = X.copy()
            Xp[i] += sgn * delta
            changes.append(clone(clf).fit(Xp, y).loss_values(Xt[t : t + 1], yt[t : t + 1])[0])
        fd = (changes[0] - changes[1]) / 2
        np.testing.assert_allclose(fd, pert[i] @ delta / n, rtol=1e-4)


def test_perturbation_influence_flows_through_rbf_features(cancer):
    """RBF: central differences of the influence quantity in the input (map fixed)."""
    X, y, Xt, yt = cancer
    X, y = X[:80], y[:80]
    est = RBFSmoothHingeSVC(gamma=0.05, t=0.3).fit(X, y)
    t = np.argmax(est.loss_values(Xt, yt))
    pert = est.perturbation_influence(Xt[t : t + 1], yt[t : t + 1])[0]
    state = est._state()
    S = state.solve_many(est.loss_gradients(Xt[t : t + 1], yt[t : t + 1])[:, np.argsort(state.perm)].T)
    i = int(np.argmax(np.linalg.norm(pert, axis=1)))
    h = 1e-5
    fd = np.empty(X.shape[1])
    for f in range(X.shape[1]):
        vals = []
        for sgn in (1, -1):
            x = X[i : i + 1].copy()
            x[0, f] += sgn * h
            g = est.loss_gradients(x, y[i : i + 1])[:, np.argsort(state.perm)]
            vals.append((g @ S)[0, 0])
        fd[f] = -(vals[0] - vals[1]) / (2 * h)
    np.testing.assert_allclose(pert[i], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


# -------------------------------------------------------------- Newton removal
NEWTON_R = {}


@pytest.mark.slow
@pytest.mark.parametrize("data", ["cancer", "wine", "digits5"])
def test_newton_removal_beats_first_order_against_retraining(request, data):
    X, y, Xt, yt = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    tests = np.random.default_rng(0).choice(len(yt), 3, replace=False)
    first = clf.influence_on_loss(Xt[tests], yt[tests], kind="remove")
    rows = np.unique(np.argsort(-np.abs(first), axis=1)[:, :50])
    res = retrain_without(clf, Xt[tests], yt[tests], indices=rows)
    r1, rn = res.pearson("remove"), res.pearson("newton")
    NEWTON_R[data] = (r1, rn)
    print(f"\n{data}: leave-one-out Pearson R first order {r1:.4f}, Newton {rn:.4f}")
    assert rn > r1
    assert rn >= 0.99 if data != "wine" else rn >= 0.985


def test_newton_step_is_exact_for_a_quadratic_loss():
    """For the squared loss one Newton step is the exact leave-one-out solution."""
    from skinfluence._optimize import fit_newton
    from skinfluence.curvature import penalty_diagonal
    from skinfluence.losses import SquaredLoss

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    yv = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(40)

    # a tiny ridge model through the mixin contract
    from skinfluence._mixin import InfluenceMixin, InfluenceModel
    from skinfluence.features import IdentityFeatures

    from sklearn.base import BaseEstimator, RegressorMixin

    class TinyRidge(InfluenceMixin, RegressorMixin, BaseEstimator):
        def __init__(self, C=1.0):
            self.C = C

        def fit(self, X, y, sample_weight=None):
            s = np.ones(len(y)) if sample_weight is None else sample_weight
            pen = penalty_diagonal(1, X.shape[1], True, self.C, len(y))
            Th, _ = fit_newton(SquaredLoss(), X, y[:, None], s, True, pen, np.zeros((1, 4)),
                               tol=1e-14)
            self.coef_, self.intercept_ = Th[:, :3], Th[:, 3]
            self.n_features_in_ = 3
            self._remember_training_data(X, y[:, None], s, y=y)
            return self

        def _influence_targets(self, y):
            return np.asarray(y, float)[:, None]

        def _influence_model(self):
            return InfluenceModel(SquaredLoss(), IdentityFeatures(), self.coef_,
                                  self.intercept_, self.C)

    m = TinyRidge(C=0.1).fit(X, yv)
    newton = m.influence_on_loss(X[:5], yv[:5], kind="newton")
    for i in range(5):
        w = np.ones(40)
        w[i] = 0
        refit = TinyRidge(C=0.1).fit(X, yv, sample_weight=w)
        np.testing.assert_allclose(
            newton[:, i], refit.loss_values(X[:5], yv[:5]) - m.loss_values(X[:5], yv[:5]),
            rtol=1e-8, atol=1e-12,
        )


def test_group_removal_newton_vs_refit(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    t = np.argsort(-clf.loss_values(Xt, yt))[:2]
    first = clf.influence_on_loss(Xt[t], yt[t], kind="remove").sum(axis=0)
    groups = [np.argsort(first)[:10], np.argsort(-first)[:10], np.arange(20)]
    newton = clf.group_influence_on_loss(Xt[t], yt[t], groups, kind="newton")
    lin = clf.group_influence_on_loss(Xt[t], yt[t], groups, kind="remove")
    for k, g in enumerate(groups):
        keep = np.ones(len(y), bool)
        keep[g] = False
        actual = clone(clf).fit(X[keep], y[keep]).loss_values(Xt[t], yt[t]) - clf.loss_values(
            Xt[t], yt[t])
        assert np.abs(newton[:, k] - actual).max() <= np.abs(lin[:, k] - actual).max() + 1e-12
        np.testing.assert_allclose(newton[:, k], actual, rtol=0.3, atol=1e-3 * np.abs(actual).max())
    # a group of one is the per-point Newton estimate
    one = clf.group_influence_on_loss(Xt[t], yt[t], [[5]], kind="newton")[:, 0]
    np.testing.assert_allclose(one, clf.influence_on_loss(Xt[t], yt[t], kind="newton")[:, 5],
                               rtol=1e-8)


# ------------------------------------------------------------ notebook tables
def test_tables_keep_features_named_like_their_own_columns(cancer):
    """Features called ``label``, ``role`` or ``self_influence`` stay in the table (as
    "label (feature)"), next to the library's columns of those names."""
    pd = pytest.importorskip("pandas")
    X, y, Xt, yt = cancer
    names = ["label", "role", "self_influence", "change_if_removed"]
    cols = names + [f"f{j}" for j in range(4, X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    clf = InfluenceLogisticRegression(**NEWTON).fit(df, y)
    table = top_training_rows(clf, pd.DataFrame(Xt[:2], columns=cols), yt[:2], k=2)
    assert list(table.columns[:3]) == ["change_if_removed", "label", "role"]
    for name in ["label", "role", "change_if_removed"]:
        np.testing.assert_array_equal(table[f"{name} (feature)"], df.loc[table.index, name])
    np.testing.assert_array_equal(table["self_influence"], df.loc[table.index, "self_influence"])
    np.testing.assert_array_equal(table["label"], y[table.index])
    suspicious = top_training_rows(clf, k=3)
    np.testing.assert_allclose(suspicious["self_influence"], np.sort(clf.self_influence())[:3])
    np.testing.assert_array_equal(suspicious["self_influence (feature)"],
                                  df.loc[suspicious.index, "self_influence"])


def test_tables_are_indexed_by_the_training_rows(cancer):
    pd = pytest.importorskip("pandas")
    X, y, Xt, yt = cancer
    cols = [f"f{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols, index=[f"row{i}" for i in range(len(y))])
    clf = InfluenceLogisticRegression(**NEWTON).fit(df, y)
    table = top_training_rows(clf, pd.DataFrame(Xt[:1], columns=cols), yt[:1], k=3)
    assert len(table) == 6 and set(table.index) <= set(df.index)
    change = clf.influence_on_loss(pd.DataFrame(Xt[:1], columns=cols), yt[:1], kind="remove")[0]
    pos = [df.index.get_loc(i) for i in table.index]
    np.testing.assert_allclose(table["change_if_removed"], change[pos])
    assert (table["role"] == np.where(change[pos] < 0, "harmful", "helpful")).all()
    np.testing.assert_array_equal(table["label"], y[pos])
    suspicious = top_training_rows(clf, k=4)
    np.testing.assert_allclose(suspicious["self_influence"], np.sort(clf.self_influence())[:4])
    agg = aggregate_influence(clf, pd.DataFrame(Xt[:5], columns=cols), yt[:5])
    np.testing.assert_allclose(
        agg, clf.influence_on_loss(pd.DataFrame(Xt[:5], columns=cols), yt[:5],
                                   kind="remove").sum(0), rtol=1e-10)
    feats = responsible_features(clf, pd.DataFrame(Xt[:5], columns=cols), yt[:5], top=10)
    assert list(feats.index) != [] and set(feats.index) == set(cols)


# ------------------------------------------------------------------- attack
def test_refits_at_their_optimum_do_not_pass_on_the_optimisers_warning():
    """lbfgs warm-started at an optimum with tol=1e-12 cannot improve in floating point
    and said "failed to converge after 0 iterations: ABNORMAL" for every refit of an
    attack. A refit whose gradient is a millionth of one row's contribution is at its
    optimum (it matches a Newton refit) and is not warned about; one that stopped
    short still is."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + rng.normal(size=120) > 0).astype(int)
    rng.normal(size=120)
    Xt = rng.normal(size=(1, 4))
    sw = rng.uniform(0.5, 2.0, 120)
    clf = InfluenceLogisticRegression(tol=1e-12, max_iter=5000).fit(X, y, sample_weight=sw)
    w = sw.copy()
    w[:3] = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refit = clf._refit(w)
    assert not [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    newton = LogisticRegression(solver="newton-cholesky", tol=1e-14).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(refit.coef_, newton.coef_, rtol=1e-7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_set_attack(clf, Xt, (Xt[:, 0] > 0).astype(int))
    assert not [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    # an explained scikit-learn model refits through its own reader: the same rule
    plain = LogisticRegression(tol=1e-12, max_iter=5000).fit(X, y, sample_weight=sw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_set_attack(explain(plain, X, y, sample_weight=sw), Xt,
                            (Xt[:, 0] > 0).astype(int))
    assert not [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    clf.set_params(max_iter=1)
    with pytest.warns(ConvergenceWarning, match="failed to converge"):
        clf._refit(w)


def test_tools_that_refit_warn_once_per_kind_of_warning(cancer):
    """A solver stopping short in every step of an attack (or every refit of a flip
    set) warns once per call, counting the others, at the caller's line."""
    import re

    from sklearn.exceptions import ConvergenceWarning

    from skinfluence.solvers import ConjugateGradient

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(
        **NEWTON, influence_solver=ConjugateGradient(maxiter=2, preconditioner=None)
    ).fit(X[:150], y[:150])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_set_attack(clf, Xt[:1], yt[:1], step=0.01, max_steps=5)
    short = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(short) == 1, [str(w.message) for w in caught]
    assert re.search(r"and \d+ more like it in this call", str(short[0].message))
    assert short[0].filename == __file__
    # retrain_without's solves nest a solver's batches in the tool's call: one warning,
    # counted once (it gave two, one ending "(and 1 more...) (and 1 more...)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retrain_without(clf, Xt[:1], yt[:1], top=3)
    short = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(short) == 1 and len(re.findall(r"more like it", short[0])) == 1, short



    X, y, Xt, yt = cancer
    X, y = X[:150], y[:150]
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    proba = clf.predict_proba(Xt)[np.arange(len(yt)), np.searchsorted(clf.classes_, yt)]
    t = int(np.argmin(np.where(proba > 0.5, proba, np.inf)))  # least confident correct point
    res = training_set_attack(clf, Xt[t : t + 1], yt[t : t + 1], step=0.05, box=2.0,
                              max_steps=40)
    changed = np.flatnonzero(np.abs(res.X_poisoned - X).max(axis=1) > 0)
    assert set(changed) <= set(res.rows)
    assert np.abs(res.X_poisoned - X).max() <= 2.0 + 1e-12
    assert res.history and res.history[-1]["target_loss"] > clf.loss_values(Xt[t : t + 1],
                                                                             yt[t : t + 1])[0]
    assert res.success
    # the reported model is a real refit on the poisoned data
    refit = clone(clf).fit(res.X_poisoned, y)
    assert refit.predict(Xt[t : t + 1])[0] != yt[t]


def test_training_set_attack_refuses_what_it_cannot_flip(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X[:150], y[:150])
    wrong = np.flatnonzero(clf.predict(Xt) != yt)[:1]
    right = np.flatnonzero(clf.predict(Xt) == yt)[:1]
    # a target already predicted wrongly would count as flipped before any step
    with pytest.raises(ValueError, match=r"already predicts target\(s\) at position\(s\) \[1\]"):
        training_set_attack(clf, Xt[np.r_[right, wrong]], yt[np.r_[right, wrong]])
    # a regressor's prediction never equals its target: nothing to flip
    with pytest.raises(ValueError, match="regressor"):
        training_set_attack(InfluenceRidge().fit(X[:150], y[:150] * 1.0), Xt[:1], yt[:1])
    # ranks beyond the training rows are refused (they were dropped, and max_steps
    # refits that moved nothing came back as an empty attack); 8 rows take the default
    with pytest.raises(ValueError, match=r"ranks \[150\] outside 0 \.\. 149"):
        training_set_attack(clf, Xt[right], yt[right], schedule=[[0], [150]])
    for bad in (0.0, True):
        with pytest.raises(ValueError, match="schedule ranks are integers 0 .. 149; got"):
            training_set_attack(clf, Xt[right], yt[right], schedule=[[bad]])
    tiny = InfluenceLogisticRegression(C=0.1).fit(X[:8], np.r_[0, 1] .repeat(4))
    ok = np.flatnonzero(tiny.predict(Xt) == yt)[:1]
    assert training_set_attack(tiny, Xt[ok], yt[ok], max_steps=2) is not None


def test_training_set_attack_on_a_table_warns_nothing(cancer):
    pd = pytest.importorskip("pandas")
    X, y, Xt, yt = cancer
    cols = [f"f{j}" for j in range(X.shape[1])]
    clf = InfluenceLogisticRegression(**NEWTON).fit(pd.DataFrame(X[:150], columns=cols), y[:150])
    t = int(np.flatnonzero(clf.predict(pd.DataFrame(Xt, columns=cols)) == yt)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refits keep the table's feature names
        res = training_set_attack(clf, pd.DataFrame(Xt[t : t + 1], columns=cols), yt[t : t + 1],
                                  max_steps=2, schedule=([0],))
    assert len(res.history) >= 1


# -------------------------------------------------------------- label audit
def test_label_audit_self_influence_beats_random(cancer):
    X, y, Xt, yt = cancer
    table = label_audit(
        InfluenceLogisticRegression(**NEWTON), X, y, Xt, yt, flip_fraction=0.1,
        check_fractions=(0.0, 0.1, 0.2), n_repeats=2, random_state=0,
    )
    mean = table.groupby(["ranking", "fraction_checked"])["flips_found"].mean()
    assert mean["self_influence", 0.2] > mean["random", 0.2] + 0.3
    assert mean["self_influence", 0.0] == 0.0
    acc = table.groupby(["ranking", "fraction_checked"])["test_accuracy"].mean()
    assert acc["self_influence", 0.2] >= acc["self_influence", 0.0]


# ----------------------------------------------------------- domain mismatch
def test_domain_mismatch_tools_point_at_the_subpopulation():
    """A group whose benign training cases were dropped: the tools name the group."""
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    cols = ["mean texture", "mean smoothness", "mean symmetry", "mean fractal dimension",
            "texture error"]
    X = pd.DataFrame(StandardScaler().fit_transform(data.data[cols]), columns=cols)
    y = data.target
    X["group"] = (np.random.default_rng(0).random(len(y)) < 0.2).astype(float)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
    dropped = (X_train["group"] == 1) & (y_train == 1)
    keep = ~dropped | (np.cumsum(dropped) <= 3)
    X_train, y_train = X_train[keep], y_train[keep]
    clf = InfluenceLogisticRegression(**NEWTON).fit(X_train, y_train)
    errors = (X_test["group"] == 1) & (clf.predict(X_test) != y_test)
    infl = aggregate_influence(clf, X_test[errors], y_test[errors])
    in_group = (X_train["group"] == 1).to_numpy()
    share = np.abs(infl[in_group]).sum() / np.abs(infl).sum()
    assert share > 3 * in_group.mean()
    table = top_training_rows(clf, X_test[errors], y_test[errors], k=4)
    harmful = table[table["role"] == "harmful"]
    assert (X_train.loc[harmful.index, "group"] == 1).all()
    assert responsible_features(clf, X_test[errors], y_test[errors]).index[0] == "group"


def test_retrain_without_table_and_progress_bar(wine):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tqdm")
    X, y, Xt, yt = wine
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    res = retrain_without(clf, Xt[:2], yt[:2], top=6, progress=True)
    frame = res.to_frame()
    assert list(frame.columns) == ["test_row", "train_row", "position", "actual",
                                   "predicted_remove", "predicted_newton"]
    assert len(frame) == 12
    # the actual changes are real refits: check one against a plain refit without the row
    i = res.indices[0]
    keep = np.arange(len(y)) != i
    direct = clone(clf).fit(X[keep], y[keep]).loss_values(Xt[:2], yt[:2]) - clf.loss_values(
        Xt[:2], yt[:2])
    np.testing.assert_allclose(res.actual[:, 0], direct, rtol=1e-6, atol=1e-10)


def test_top_k_takes_one_value_per_row():
    from skinfluence import top_k

    values = np.array([0.5, -2.0, 3.0, 3.0, 1.0])
    idx, vals = top_k(values, 3)
    np.testing.assert_array_equal(idx, [2, 3, 4])  # ties in row order
    np.testing.assert_array_equal(vals, values[idx])
    idx, _ = top_k(values, 2, largest=False)
    np.testing.assert_array_equal(idx, [1, 0])
    with pytest.raises(ValueError, match=r"1-D array .* shape \(2, 5\).*sum\(axis=0\)"):
        top_k(np.vstack([values, values]), 2)  # a bare IndexError before


def test_label_audit_of_a_weighted_fit_refits_with_its_weights(cancer, monkeypatch):
    from skinfluence.explain import Explanation

    X, y, Xt, yt = cancer
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y, sample_weight=w)
    seen, refit = [], Explanation._refit

    def spy(self, weights, *args, **kwargs):
        seen.append(np.array(weights))
        return refit(self, weights, *args, **kwargs)

    monkeypatch.setattr(Explanation, "_refit", spy)
    label_audit(clf, X, y, Xt, yt, check_fractions=(0.0, 0.1), n_repeats=1,
                rankings=("self_influence",), random_state=0)
    assert seen and all(np.array_equal(s, w) for s in seen)  # np.ones(n) before
