"""kind="newton" answered again from what the first question kept.

The per-row Newton coefficients (and, when small, the steps) are kept on the
fitted state, so a repeated question takes another route: the test rows solved for
instead of the steps formed. Every route is checked against an independent
autograd oracle -- the Newton step without the row, ``(H - c_i hess l_i)^+ c_i
grad l_i`` with ``H`` and the row's derivatives from ``tests/oracle.py`` -- cold
and warm, with the steps kept and not.
"""

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.sparse as sp
from autograd import grad, hessian
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, InfluencePoissonRegressor
from skinfluence import _newton
from skinfluence.losses import (
    HalfGammaDeviance,
    HalfPoissonDeviance,
    HalfTweedieDeviance,
    LogLoss,
    OneVsRestLogLoss,
    SmoothHinge,
    SoftmaxLoss,
    SquaredLoss,
)

from .oracle import per_sample_logistic_loss, risk, theta_of, unit_deviance

ROWS = [0, 7, 31]


def _oracle_newton(est, X, y, X_test, y_test, rows):
    """The Newton step without each row in ``rows`` (theta order, one row each) and the
    test losses' change after it, shape (m, len(rows))."""
    K = 1 if len(est.classes_) == 2 else len(est.classes_)
    yi, yti = np.searchsorted(est.classes_, y), np.searchsorted(est.classes_, y_test)
    theta, n = theta_of(est), len(y)
    H = hessian(risk)(theta, X, yi, np.ones(n), K, est.C, est.fit_intercept)
    base = per_sample_logistic_loss(theta, X_test, yti, K, est.fit_intercept)
    out, steps = [], []
    for i in rows:
        def loss_i(th):
            return per_sample_logistic_loss(th, X[i:i + 1], yi[i:i + 1], K, est.fit_intercept)[0]
        c = 1.0 / n
        step = np.linalg.pinv(H - c * hessian(loss_i)(theta), rcond=1e-12,
                              hermitian=True) @ (c * grad(loss_i)(theta))
        steps.append(step)
        out.append(per_sample_logistic_loss(theta + step, X_test, yti, K, est.fit_intercept)
                   - base)
    return np.array(steps), np.column_stack(out)


CASES = {
    "binary, direct (leverages)": ("cancer", {}, False),
    "binary, sparse rows": ("cancer", {}, True),
    "binary, conjugate gradients": ("cancer", {"influence_solver": "cg"}, False),
    "multinomial, direct": ("wine", {}, False),
    "multinomial, conjugate gradients": ("wine", {"influence_solver": "cg"}, False),
}


@pytest.mark.parametrize("keep_steps", [True, False], ids=["steps kept", "coefficients only"])
@pytest.mark.parametrize("case", list(CASES))
def test_repeated_newton_questions_match_the_oracle(request, monkeypatch, case, keep_steps):
    data, params, sparse = CASES[case]
    X, y, Xt, yt = request.getfixturevalue(data)
    X, y = X[:90], y[:90]
    if not keep_steps:
        monkeypatch.setattr(_newton, "STEPS_CACHE_ELEMENTS", 0)
    clf = InfluenceLogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12,
                                      max_iter=1000, **params)
    clf.fit(sp.csr_matrix(X) if sparse else X, y)
    steps, oracle = _oracle_newton(clf, X, y, Xt[:40], yt[:40], ROWS)
    tol = dict(rtol=1e-7, atol=1e-9 * np.abs(oracle).max())
    Xq = sp.csr_matrix(Xt) if sparse else Xt
    # cold; again with the same rows; then few rows (the test side is cheaper) and many
    for t in (slice(0, 40), slice(0, 40), slice(0, 2), slice(0, 40)):
        got = clf.influence_on_loss(Xq[t], yt[t], kind="newton")
        np.testing.assert_allclose(got[:, ROWS], oracle[t], **tol)
    state = clf._state()
    kept = state.__dict__["_newton"]
    assert "coef" in kept and (keep_steps or "steps" not in kept)
    # the parameters' steps, from what was kept, are the oracle's too
    np.testing.assert_allclose(clf.influence_on_params(kind="newton")[ROWS], steps,
                               rtol=1e-7, atol=1e-9 * np.abs(steps).max())


def test_newton_predictions_and_functions_reuse_the_fit(wine, monkeypatch):
    """influence_on_prediction / influence_on_function with kind="newton", asked twice
    (the second by the test side, from kept coefficients), against the oracle's steps."""
    monkeypatch.setattr(_newton, "STEPS_CACHE_ELEMENTS", 0)
    X, y, Xt, yt = wine
    X, y = X[:90], y[:90]
    clf = InfluenceLogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12,
                                      max_iter=1000).fit(X, y)
    K, n = 3, len(y)
    yi = np.searchsorted(clf.classes_, y)
    theta = theta_of(clf)
    H = hessian(risk)(theta, X, yi, np.ones(n), K, clf.C, True)
    W0, b0 = clf.coef_, clf.intercept_
    for i in ROWS:
        def loss_i(th):
            return per_sample_logistic_loss(th, X[i:i + 1], yi[i:i + 1], K, True)[0]
        step = np.linalg.pinv(H - hessian(loss_i)(theta) / n, rcond=1e-12, hermitian=True) \
            @ (grad(loss_i)(theta) / n)
        W, b = W0 + step[:K * 13].reshape(K, 13), b0 + step[K * 13:]
        dF = Xt[:3] @ (W - W0).T + (b - b0)
        for _ in range(2):
            got = clf.influence_on_prediction(Xt[:3], kind="newton",
                                              response_method="decision_function")
            np.testing.assert_allclose(got[:, i, :], dF, rtol=1e-7, atol=1e-10)
            fn = clf.influence_on_function(lambda F: anp.sum(F[..., 1], axis=-1), Xt[:3],
                                           kind="newton")
            np.testing.assert_allclose(fn[i], dF[:, 1].sum(), rtol=1e-7, atol=1e-10)


def test_newton_with_a_penalty_share_cold_and_warm(monkeypatch):
    """A GLM's penalty share adds ``c_i u`` to every step and the test side adds it to
    every output. The losses after the steps of ``influence_on_params(kind="newton")``
    (checked against statsmodels and refits in test_glm.py) are evaluated here with
    the deviance written out; every route must give them."""
    monkeypatch.setattr(_newton, "STEPS_CACHE_ELEMENTS", 0)
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    counts = np.round(np.exp(y / 100.0))
    X, y, Xt, yt = X[:200], counts[:200], X[200:230], counts[200:230]
    glm = InfluencePoissonRegressor(alpha=0.05, max_iter=1000, tol=1e-12).fit(X, y)
    assert glm._state().share is not None
    steps = glm.influence_on_params(kind="newton")  # cold: the steps from H^-1's columns
    f0 = Xt @ glm.coef_ + glm.intercept_
    f = f0[:, None] + Xt @ steps[:, :-1].T + steps[:, -1]
    want = (unit_deviance(yt[:, None], np.exp(f), 1)
            - unit_deviance(yt, np.exp(f0), 1)[:, None]) / 2
    tol = dict(rtol=1e-9, atol=1e-12 * np.abs(want).max())
    for _ in range(2):  # the test side (leverages kept), then again
        np.testing.assert_allclose(glm.influence_on_loss(Xt, yt, kind="newton"), want, **tol)
    # the steps again, now from the kept coefficients
    np.testing.assert_allclose(glm.influence_on_params(kind="newton"), steps, rtol=1e-9,
                               atol=1e-12 * np.abs(steps).max())


def _encoded(loss, rng, m, K):
    if isinstance(loss, (SoftmaxLoss,)):
        return np.eye(K)[rng.integers(0, K, m)]
    if isinstance(loss, LogLoss):  # labels, not a column
        return rng.integers(0, 2, m).astype(float)
    if isinstance(loss, OneVsRestLogLoss):
        return rng.integers(0, 2, (m, K)).astype(float)
    if isinstance(loss, SmoothHinge):
        return rng.choice([-1.0, 1.0], (m, K))
    if isinstance(loss, HalfTweedieDeviance):
        return rng.poisson(2.0, (m, K)) + (1.0 if isinstance(loss, HalfGammaDeviance) else 0.0)
    return rng.standard_normal((m, K))


@pytest.mark.parametrize("loss", [LogLoss(), OneVsRestLogLoss(), SoftmaxLoss(), SmoothHinge(0.1),
                                  SquaredLoss(), HalfPoissonDeviance(), HalfGammaDeviance(),
                                  HalfTweedieDeviance(power=1.5)], ids=repr)
def test_value_change_is_the_difference_of_values(loss):
    rng = np.random.default_rng(0)
    m, c = 4, 6
    K = 1 if isinstance(loss, (LogLoss, HalfTweedieDeviance)) else 3
    Y, F0 = _encoded(loss, rng, m, K), rng.standard_normal((m, K))
    dF = rng.standard_normal((K, m, c))
    got = loss.value_change(Y, F0, dF)
    def value(t, F):
        return np.asarray(loss.value(Y[t:t + 1], F[None]))[0]

    want = np.array([[value(t, F0[t] + dF[:, t, j]) - value(t, F0[t]) for j in range(c)]
                     for t in range(m)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_softmax_value_change_with_soft_labels():
    """Labels that are not one-hot (the one-hot shortcut does not apply) still give
    the difference of the loss values."""
    loss = SoftmaxLoss()
    rng = np.random.default_rng(1)
    m, c, K = 5, 4, 3
    Y = rng.dirichlet(np.ones(K), m)
    F0, dF = rng.standard_normal((m, K)), rng.standard_normal((K, m, c))
    got = loss.value_change(Y, F0, dF)
    want = np.array([[loss.value(Y[t:t + 1], (F0[t] + dF[:, t, j])[None])[0]
                      - loss.value(Y[t:t + 1], F0[t][None])[0] for j in range(c)]
                     for t in range(m)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_softmax_value_change_is_finite_far_from_the_fit():
    """Outputs of +-800 overflow a plain exp; the change stays finite and exact."""
    loss = SoftmaxLoss()
    Y = np.eye(3)[[0, 2]]
    F0 = np.array([[0.0, 1.0, -1.0], [700.0, -700.0, 0.0]])
    dF = np.zeros((3, 2, 2))
    dF[0, :, 0], dF[1, :, 1] = 800.0, -800.0
    got = loss.value_change(Y, F0, dF)
    assert np.isfinite(got).all()
    # by hand: logsumexp(F0 + dF) - logsumexp(F0) - dF_y
    lse = np.logaddexp.reduce
    for t in range(2):
        for j in range(2):
            want = lse(F0[t] + dF[:, t, j]) - lse(F0[t]) - dF[Y[t].argmax(), t, j]
            np.testing.assert_allclose(got[t, j], want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("loss", [LogLoss(), SmoothHinge(0.1)], ids=repr)
def test_binary_value_change_is_exact_far_from_the_fit(loss):
    """Outputs of +-800 (exp overflows): the change is finite and matches logaddexp."""
    F0 = np.array([[-800.0], [0.5], [800.0]])
    dF = np.array([[[1600.0, -3.0], [0.0, 900.0], [-1600.0, 2.0]]])
    if isinstance(loss, LogLoss):
        Y = np.array([1.0, 0.0, 1.0])
        def value(y, f):
            return np.logaddexp(0.0, f) - y * f
    else:
        Y = np.array([[1.0], [-1.0], [1.0]])
        def value(y, f):
            return 0.1 * np.logaddexp(0.0, (1.0 - y * f) / 0.1)
    y = Y.reshape(3, 1)
    want = value(y, F0 + dF[0]) - value(y, F0)
    got = loss.value_change(Y, F0, dF)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_value_change_keeps_its_precision_on_confidently_right_rows():
    """A row predicted right with outputs of 50-60 changes its loss by about 1e-24: the
    change must keep its relative precision (not the outputs' rounding, 1e-15), checked
    against 80-digit decimal arithmetic."""
    from decimal import Decimal, getcontext

    getcontext().prec = 80

    def lse(values):
        return sum(v.exp() for v in values).ln()

    rng = np.random.default_rng(0)
    m, c, K = 4, 5, 3
    F0 = rng.standard_normal((m, K))
    F0[:2, 0] += 55.0
    y = np.array([0, 0, 1, 2])
    dF = 0.5 * rng.standard_normal((K, m, c))
    dF[:, :, 0] = 0.0  # no step: exactly no change
    for loss, Y, outputs in [(SoftmaxLoss(), np.eye(K)[y], K), (LogLoss(), (y == 0) * 1.0, 1)]:
        F, D = F0[:, :outputs], dF[:outputs]
        if outputs == 1:  # binary: the confident rows are positive
            F = np.where(y[:, None] == 0, F0[:, :1], -F0[:, :1])
        got = loss.value_change(Y, F, D)
        for t in range(m):
            for j in range(c):
                f0 = [Decimal(float(v)) for v in F[t]]
                f1 = [a + Decimal(float(b)) for a, b in zip(f0, D[:, t, j])]
                if outputs == 1:  # log(1 + e^f) - y f
                    f0, f1 = [Decimal(0), f0[0]], [Decimal(0), f1[0]]
                yk = [Decimal(float(v)) for v in np.atleast_1d(Y[t])]
                if outputs == 1:
                    yk = [1 - yk[0], yk[0]]
                want = (lse(f1) - sum(a * b for a, b in zip(yk, f1))) \
                    - (lse(f0) - sum(a * b for a, b in zip(yk, f0)))
                np.testing.assert_allclose(got[t, j], float(want), rtol=1e-11, atol=0)


def test_newton_refuses_test_rows_whose_outputs_overflow():
    """A GLM test row whose mean overflows: the clear error of kind="remove", not a
    row of NaN with a false leverage-1 warning."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0]))
    glm = InfluencePoissonRegressor(alpha=0.1, tol=1e-12, max_iter=1000).fit(X, y)
    Xt = rng.standard_normal((3, 3))
    Xt[1, 0] = 2000.0
    yt = np.array([1, 2, 0])
    with pytest.raises(ValueError, match="overflow"):
        glm.influence_on_loss(Xt, yt, kind="remove")
    with pytest.raises(ValueError, match="overflow"):
        glm.influence_on_loss(Xt, yt, kind="newton")
    with pytest.raises(ValueError, match="overflow"):
        glm.group_influence_on_loss(Xt, yt, [[0, 1]], kind="newton")


def test_every_newton_answer_names_rows_of_leverage_one():
    """A feature non-zero on one row only, unpenalised: that row has no Newton step.
    Every kind="newton" answer is NaN there only, and says so."""
    from skinfluence import InfluenceRidge

    rng = np.random.default_rng(7)
    X = np.hstack([rng.standard_normal((40, 3)), np.zeros((40, 1))])
    X[5, 3] = 1.3
    y = X[:, :3] @ [1.0, -2.0, 0.5] + rng.standard_normal(40)
    Xt = rng.standard_normal((6, 4))
    reg = InfluenceRidge(alpha=0.0).fit(X, y)
    answers = {
        "prediction": lambda: reg.influence_on_prediction(Xt, kind="newton").T,
        "function": lambda: reg.influence_on_function(
            lambda F: anp.sum(F[..., 0], axis=-1), Xt, kind="newton"),
        "cooks": reg.cooks_distance,
        "loss": lambda: reg.influence_on_loss(Xt, rng.standard_normal(6), kind="newton").T,
    }
    for name, answer in answers.items():
        with pytest.warns(RuntimeWarning, match="leverage 1"):
            out = np.asarray(answer())
        assert np.isnan(out[5]).all() and np.isfinite(np.delete(out, 5, axis=0)).all(), name
