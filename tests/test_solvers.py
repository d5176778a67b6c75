"""Inverse-Hessian solvers, sparse input and bounded memory."""

import re
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import StandardScaler
from scipy.special import expit
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skinfluence import (InfluenceLogisticRegression, InfluenceRidge, RBFSmoothHingeSVC,
                         SmoothHingeSVC)
from skinfluence.solvers import (
    CGSolver,
    ConjugateGradient,
    DirectSolver,
    LiSSA,
    LissaSolver,
)

NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("data", ["cancer", "wine"])
@pytest.mark.parametrize(
    "solver, tol",
    [("cg", 1e-8), (ConjugateGradient(tol=1e-12, preconditioner=None), 1e-8),
     (LiSSA(tol=1e-7), 1e-5)],
)
def test_iterative_solvers_agree_with_direct(request, data, solver, tol):
    X, y, Xt, yt = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ref = (clf.influence_on_loss(Xt[:10], yt[:10]), clf.self_influence(),
           clf.influence_on_params())
    clf.set_params(influence_solver=solver)
    got = (clf.influence_on_loss(Xt[:10], yt[:10]), clf.self_influence(),
           clf.influence_on_params())
    for a, b in zip(got, ref):
        assert _rel(a, b) < tol


@pytest.mark.parametrize("solver", ["cg", LiSSA(tol=1e-7)])
def test_iterative_solvers_on_svms(cancer, solver):
    X, y, Xt, yt = cancer
    X, y = X[:200], y[:200]
    for est in (SmoothHingeSVC(t=0.2), RBFSmoothHingeSVC(gamma=0.03, t=0.2)):
        est.fit(X, y)
        ref = est.influence_on_loss(Xt[:8], yt[:8])
        est.set_params(influence_solver=solver)
        assert _rel(est.influence_on_loss(Xt[:8], yt[:8]), ref) < 1e-5


def test_lissa_defaults_stop_by_the_recursion_change(cancer):
    """Default LiSSA stops each right-hand side when its estimated error is within
    tol = 1e-2 (by the recursion's change, before the worst-case depth), and is that
    accurate."""
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ref = clf.influence_on_loss(Xt[:20], yt[:20])
    clf.set_params(influence_solver="lissa")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cap reached, no warning
        got = clf.influence_on_loss(Xt[:20], yt[:20])
    solver = clf._state().solver
    assert solver.steps[-1] <= solver.depth
    err = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert err.max() < 1e-2
    # a tighter tol takes more steps and is more accurate
    clf.set_params(influence_solver=LiSSA(tol=1e-4))
    tight = clf.influence_on_loss(Xt[:20], yt[:20])
    assert clf._state().solver.steps[-1] > solver.steps[-1]
    assert (np.linalg.norm(tight - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() < 1e-4


def test_lissa_stops_early_when_the_solution_lies_along_large_curvature():
    """The paper's recursion (no preconditioner, no acceleration) stops long before
    its worst-case depth when ``H^{-1} b`` lies along large eigenvalues."""
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, 20, random_state=0)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X[:2900], y[:2900])
    ref = clf.influence_on_loss(X[2900:], y[2900:])
    clf.set_params(influence_solver=LiSSA(preconditioner=None, acceleration=None))
    got = clf.influence_on_loss(X[2900:], y[2900:])
    solver = clf._state().solver
    assert solver.steps[-1] < solver.depth / 4
    assert (np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() < 1e-2


def test_lissa_defaults_reach_tol_on_ill_conditioned_multinomial_digits():
    """Digits, 10 classes, P = 650, kappa ~ 3,000: the paper's recursion needs
    about 14,000 steps for 1e-2; the class-block preconditioner and Chebyshev's
    weights reach it in a few hundred, and the plain recursion given the same
    number of steps does not."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = InfluenceLogisticRegression(C=10.0, tol=1e-10, max_iter=5000).fit(X[:1400], y[:1400])
    Xt, yt = X[1400:1430], y[1400:1430]
    ref = clf.influence_on_loss(Xt, yt)
    clf.set_params(influence_solver="lissa")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = clf.influence_on_loss(Xt, yt)
    solver = clf._state().solver
    assert (solver.preconditioner, solver.acceleration) == ("block", "chebyshev")
    used = solver.steps[-1]
    assert used < 400

    def err(a):
        return (np.linalg.norm(a - ref, axis=1) / np.linalg.norm(ref, axis=1)).max()

    assert err(got) < 1e-2
    clf.set_params(influence_solver=LiSSA(preconditioner=None, acceleration=None, depth=used))
    assert err(clf.influence_on_loss(Xt, yt)) > 1e-2


def test_lanczos_bounds_bracket_the_spectrum():
    from skinfluence.solvers import _lanczos_bounds

    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    lam = np.geomspace(1e-3, 5.0, 300)
    H = (Q * lam) @ Q.T
    low, high, settled = _lanczos_bounds(lambda v: H @ v, 300)
    assert lam[-1] * (1 - 1e-12) <= high <= lam[-1] * 1.01  # converged: to rounding
    assert lam[0] <= low <= 10 * lam[0] and settled
    # an invariant subspace is found exactly
    low, high, settled = _lanczos_bounds(lambda v: 2.0 * v, 50)
    assert np.isclose(low, 2.0) and np.isclose(high, 2.0) and settled
    # a tail of eigenvalues down to 1e-9: the smallest Ritz value is far above it, and
    # says so (its residual norm exceeds it)
    lam = np.r_[np.geomspace(1e-9, 1e-4, 40), np.geomspace(1e-3, 5.0, 260)]
    low, _, settled = _lanczos_bounds(lambda v: (Q * lam) @ (Q.T @ v), 300)
    assert low > 1e3 * lam[0] and not settled


def test_lissa_warns_when_the_smallest_eigenvalue_is_not_resolved():
    """A Hessian with a tail of tiny eigenvalues (near-duplicate columns, almost no
    penalty): 120 Lanczos steps leave lambda_min 1e3-fold too high, and the depth set
    from it stops LiSSA 9% away from the direct answer. Said, not silent."""
    rng = np.random.default_rng(0)
    B = rng.standard_normal((600, 120))
    X = np.c_[B, B[:, :30] + rng.standard_normal((600, 30)) * np.logspace(-1, -4, 30)]
    y = B[:, 0] + rng.standard_normal(600)
    ref = InfluenceRidge(alpha=1e-6).fit(X, y).influence_on_loss(X[:5], y[:5])
    est = InfluenceRidge(alpha=1e-6, influence_solver=LiSSA())
    with pytest.warns(ConvergenceWarning, match="smallest eigenvalue .* has not settled"):
        got = est.fit(X, y).influence_on_loss(X[:5], y[:5])
    assert np.abs(got - ref).max() / np.abs(ref).max() > 1e-2


def test_lissa_options_give_the_same_answer(wine):
    """Every preconditioner / acceleration pairing reaches the direct answer; Chebyshev
    with mini-batches is refused with the fix."""
    X, y, Xt, yt = wine
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ref = clf.influence_on_loss(Xt[:5], yt[:5])
    for pre in ("jacobi", "block", None):
        for acc in ("chebyshev", None):
            clf.set_params(influence_solver=LiSSA(tol=1e-6, preconditioner=pre,
                                                  acceleration=acc, max_depth=200_000))
            assert _rel(clf.influence_on_loss(Xt[:5], yt[:5]), ref) < 1e-4, (pre, acc)
    clf.set_params(influence_solver=LiSSA(acceleration="chebyshev", batch_size=32))
    with pytest.raises(ValueError, match="needs full batches"):
        clf.influence_on_loss(Xt[:5], yt[:5])
    clf.set_params(influence_solver=LiSSA(repeats=3))  # full batches: one identical run
    clf.influence_on_loss(Xt[:5], yt[:5])
    assert len(clf._state().solver.steps) == 1
    # mini-batches given scale and depth: no Lanczos pass over all rows
    clf.set_params(influence_solver=LiSSA(batch_size=16, scale=50.0, depth=5, repeats=2,
                                          random_state=0))
    clf.influence_on_loss(Xt[:5], yt[:5])
    solver = clf._state().solver
    assert solver.lam_max is None and len(solver.steps) == 2


def test_lissa_diverges_loudly_when_scale_is_too_small(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    for scale in (1e-6, 2.0):  # the estimate is about 8.7: refused before any step
        clf.set_params(influence_solver=LiSSA(scale=scale, depth=20))
        with pytest.raises(ValueError, match="below the largest eigenvalue.*scale=None"):
            clf.influence_on_loss(Xt[:3], yt[:3])


def test_lissa_is_within_tol_or_warns_and_never_warns_falsely():
    """Found by attacking the defaults: an ill-conditioned ridge (Chebyshev must not
    stop on its non-monotone steps), small mini-batches (scale must bound every
    mini-batch Hessian), and a well-conditioned problem whose whole estimated depth
    is under the stopping rule's window (no false warning)."""
    from sklearn.datasets import load_breast_cancer

    from skinfluence import InfluenceRidge

    rng = np.random.RandomState(0)
    X = rng.randn(500, 20)
    X[:, 1] = X[:, 0] + 3e-4 * X[:, 1]
    y = X[:, 0] + X[:, 2] + rng.randn(500)
    est = InfluenceRidge(alpha=1e-6).fit(X, y)
    ref = est.influence_on_loss(X[:5], y[:5])
    est.set_params(influence_solver=LiSSA())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = est.influence_on_loss(X[:5], y[:5])
    err = (np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max()
    assert err < 1e-2 or any(issubclass(w.category, ConvergenceWarning) for w in caught)

    Xc, yc = load_breast_cancer(return_X_y=True)
    Xc = StandardScaler().fit_transform(Xc)
    clf = InfluenceLogisticRegression(**NEWTON).fit(Xc, yc)
    ref = clf.influence_on_loss(Xc[:5], yc[:5])
    for batch in (1, 8, 64):
        clf.set_params(influence_solver=LiSSA(batch_size=batch, random_state=0, depth=300))
        got = clf.influence_on_loss(Xc[:5], yc[:5])
        assert np.isfinite(got).all() and _rel(got, ref) < 1.0, batch  # no blow-up
    clf.set_params(influence_solver=LiSSA(batch_size=32, random_state=0, max_depth=50))
    with pytest.warns(ConvergenceWarning, match="max_depth=50"):
        clf.influence_on_loss(Xc[:5], yc[:5])

    Xr = rng.randn(300, 6)
    yr = Xr @ rng.randn(6) + rng.randn(300)
    ridge = InfluenceRidge(influence_solver=LiSSA()).fit(Xr, yr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ridge.influence_on_loss(Xr[:5], yr[:5])


def test_lissa_warns_when_its_depth_cap_stops_it(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON, influence_solver=LiSSA(max_depth=2)).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.influence_on_loss(Xt[:3], yt[:3])
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    # said before the steps are spent (the estimate is far beyond the cap), then after
    assert re.search(r"ask for about \S+ steps per solve, far beyond max_depth=2\b",
                     messages[0]), messages
    assert re.search(r"stopped after 2 steps \(max_depth=2\).*influence_solver='cg'",
                     messages[-1]), messages
    assert len(messages) == 2


def test_lissa_warns_when_an_explicit_depth_is_too_short(cancer):
    """LiSSA(depth=3) stopped short silently; the spectrum estimates (and, with full
    batches, the recursion's own change) say so -- the errors are real: checked
    against the direct solver -- and an explicit depth long enough stays silent. With
    mini-batches the cut series is a bias that repeats do not average away (depth=5:
    65% off, and only the noise was reported); given scale as well (the paper's
    setting) there is no estimate, and none is said."""
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    exact = clf.influence_on_loss(Xt[:3], yt[:3])
    for config in (LiSSA(depth=3), LiSSA(depth=3, acceleration=None),
                   LiSSA(depth=5, batch_size=32, repeats=4, random_state=0)):
        clf.set_params(influence_solver=config)
        with pytest.warns(ConvergenceWarning, match=r"LiSSA\(depth=\d\) stopped short of "
                          r"tol=0.01: the spectrum estimates ask for about \d+ steps"):
            short = clf.influence_on_loss(Xt[:3], yt[:3])
        assert np.abs(short - exact).max() > 0.01 * np.abs(exact).max()
    for config in (LiSSA(depth=5000),
                   LiSSA(depth=3, batch_size=50, scale=50.0, random_state=0)):
        clf.set_params(influence_solver=config)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            clf.influence_on_loss(Xt[:3], yt[:3])


@pytest.mark.parametrize("data", ["cancer", "wine"])
@pytest.mark.parametrize("preconditioner", ["jacobi", "block", "nystrom", None])
def test_cg_preconditioners_agree_with_direct(request, data, preconditioner):
    X, y, Xt, yt = request.getfixturevalue(data)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ref = clf.influence_on_loss(Xt[:10], yt[:10])
    clf.set_params(influence_solver=ConjugateGradient(preconditioner=preconditioner, rank=20))
    assert _rel(clf.influence_on_loss(Xt[:10], yt[:10]), ref) < 1e-8
    assert clf._state().solver.preconditioner == preconditioner


def test_structured_preconditioners_cut_cg_iterations():
    """On digits (10 classes, correlated pixels) the class-block and Nystrom
    preconditioners need far fewer CG iterations than Jacobi; "auto" picks the
    block one for a multinomial model."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = InfluenceLogisticRegression(**NEWTON).fit(X[:600], y[:600])
    iterations = {}
    for pc in ("jacobi", "block", "nystrom", "auto"):
        clf.set_params(influence_solver=ConjugateGradient(tol=1e-8, preconditioner=pc))
        clf.influence_on_loss(X[600:620], y[600:620])
        solver = clf._state().solver
        iterations[solver.preconditioner if pc != "auto" else pc] = solver.iterations[-1]
    assert iterations["block"] * 2 < iterations["jacobi"]
    assert iterations["nystrom"] * 2 < iterations["jacobi"]
    assert iterations["auto"] == iterations["block"]


@pytest.mark.parametrize("products", ["dense", "matrix-free"])
def test_cg_dense_and_matrix_free_products_agree(cancer, products):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    ref = clf.influence_on_loss(Xt[:10], yt[:10])
    clf.set_params(influence_solver=ConjugateGradient(products=products))
    assert _rel(clf.influence_on_loss(Xt[:10], yt[:10]), ref) < 1e-8
    assert clf._state().solver.products == products


def test_cg_forms_h_only_when_its_products_are_cheaper():
    """'auto': dense rows with many of them per parameter -> H formed once; sparse
    rows with few non-zeros -> matrix-free."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 20))
    y = (X[:, 0] > 0).astype(int)
    clf = InfluenceLogisticRegression(**NEWTON, influence_solver="cg").fit(X, y)
    assert clf._state().solver.products == "dense"
    Xs = sp.random(300, 2000, density=0.005, format="csr", random_state=0)
    ys = rng.integers(0, 2, 300)
    clf = InfluenceLogisticRegression(C=0.1, influence_solver="cg").fit(Xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert clf._state().solver.products == "matrix-free"


def test_cg_matches_scipy_cg_one_column(cancer):
    """Our block CG is CG: one right-hand side agrees with scipy.sparse.linalg.cg."""
    from scipy.sparse.linalg import LinearOperator, cg

    X, y, _, _ = cancer
    clf = InfluenceLogisticRegression(**NEWTON, influence_solver="cg").fit(X, y)
    state = clf._state()
    b = np.random.default_rng(0).standard_normal(state.P)
    ours = state.solver.solve(b)
    op = LinearOperator((state.P, state.P), matvec=state.op.matvec)
    ref, info = cg(op, b, rtol=1e-12, maxiter=5000)
    assert info == 0
    assert _rel(ours, ref) < 1e-8


def test_solver_objects_are_nested_parameters(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON, influence_solver=ConjugateGradient())
    assert clf.get_params()["influence_solver__tol"] == 1e-10
    clf.set_params(influence_solver__tol=1e-6)
    assert clf.influence_solver.tol == 1e-6
    clf.fit(X, y)
    assert isinstance(clf._state().solver, CGSolver)
    c = clone(clf)
    assert c.influence_solver is not clf.influence_solver and c.influence_solver.tol == 1e-6
    with pytest.raises(ValueError, match="influence_solver"):
        InfluenceLogisticRegression(influence_solver="qr").fit(X, y)


def test_cg_warns_with_residual_when_stopped_early(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(
        **NEWTON, influence_solver=ConjugateGradient(maxiter=3, preconditioner=None)
    ).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="relative residual"):
        clf.influence_on_loss(Xt[:3], yt[:3])


def test_auto_rule():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 50))
    y = (X[:, 0] > 0).astype(int)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    assert isinstance(clf._state().solver, DirectSolver)
    Xw = sp.random(300, 4500, density=0.01, format="csr", random_state=0)
    clf = InfluenceLogisticRegression(tol=1e-10, max_iter=1000).fit(Xw, y)
    assert isinstance(clf._state().solver, CGSolver)
    clf.set_params(influence_solver=LiSSA(depth=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(clf._state().solver, LissaSolver)


def test_auto_factors_h_for_per_row_quantities_beyond_4000_parameters():
    """Beyond 4,000 parameters "auto" starts with CG, which suits a few test rows; a
    call that needs a solve per training row factors H instead (it fits, and costs
    less than n CG solves), with the direct answers. A chosen CG is kept."""
    rng = np.random.default_rng(0)
    n, C = 1000, 0.05
    X = rng.standard_normal((n, 4100))
    y = (X[:, :20].sum(1) + rng.standard_normal(n) > 0).astype(int)
    clf = InfluenceLogisticRegression(C=C, fit_intercept=False, tol=1e-10,
                                      max_iter=1000).fit(X, y)
    clf.influence_on_loss(X[:3], y[:3])
    assert isinstance(clf._state().solver, CGSolver)  # three solves: CG pays
    si = clf.self_influence()
    assert isinstance(clf._state().solver, DirectSolver)
    # oracle: H = lam I + (1/n) X^T D X through Woodbury on the n x n system
    p = expit(X @ clf.coef_.ravel())
    D, lam = p * (1 - p), 1.0 / (C * n)
    G = X * (p - y)[:, None]
    inner = np.linalg.solve(np.diag(n * lam / D) + X @ X.T, X @ G.T)
    hinv_g = (G.T - X.T @ inner) / lam
    np.testing.assert_allclose(si, -np.einsum("ij,ji->i", G, hinv_g), rtol=1e-7)
    chosen = clone(clf).set_params(influence_solver="cg").fit(X, y)
    chosen.influence_on_loss(X[:3], y[:3])
    assert isinstance(chosen._state().solver, CGSolver)
    # the factor's damping check runs when "auto" switches, as when "direct" is chosen
    from skinfluence import DampingWarning

    damped = clone(clf).set_params(damping=0.05).fit(X, y)
    with pytest.warns(DampingWarning, match="damping=0.05"):
        damped.self_influence()


def test_a_short_stopped_solver_warns_once_per_call(cancer):
    """Batches and chunks of right-hand sides each stop short; the call warns once,
    naming the residual and how many other batches stopped short."""
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    clf.set_params(influence_solver=ConjugateGradient(maxiter=2, batch_size=50,
                                                      preconditioner=None))
    for call in (clf.self_influence, clf.influence_on_params,
                 lambda: clf.influence_on_params(kind="newton")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        shortfalls = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        assert len(shortfalls) == 1, [str(w.message) for w in caught]
        assert re.search(r"residual .* more like it in this call", str(shortfalls[0].message))
        assert shortfalls[0].filename == __file__
    # Newton steps from a short-stopped solver are not kept: each call that uses them warns
    for call in (clf.loo_decision_function, clf.loo_predict_proba, clf.cooks_distance):
        with pytest.warns(ConvergenceWarning, match="residual"):
            call()


@pytest.mark.slow
def test_leave_one_out_pearson_for_each_solver(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    t = 3
    base = clf.influence_on_loss(Xt[t : t + 1], yt[t : t + 1], kind="remove")[0]
    top = np.argsort(-np.abs(base))[:50]
    actual = []
    p0 = clf.predict_proba(Xt[t : t + 1])[0, yt[t]]
    for i in top:
        keep = np.arange(len(y)) != i
        p = clone(clf).fit(X[keep], y[keep]).predict_proba(Xt[t : t + 1])[0, yt[t]]
        actual.append(np.log(p0) - np.log(p))
    rs = {}
    for solver in ("direct", "cg", "lissa"):
        clf.set_params(influence_solver=solver)
        pred = clf.influence_on_loss(Xt[t : t + 1], yt[t : t + 1], kind="remove")[0]
        rs[solver] = pearsonr(pred[top], actual)[0]
    print(f"\nleave-one-out Pearson R by solver (breast_cancer): {rs}")
    assert min(rs.values()) > 0.9


# ------------------------------------------------------------------ sparse
def _bag_of_words(n, p, density, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, p, density=density, format="csr", random_state=seed,
                  data_rvs=lambda k: rng.poisson(2, k) + 1.0)
    w = rng.standard_normal(p) * (rng.random(p) < 0.05)
    y = (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def test_sparse_bag_of_words_matches_woodbury_oracle():
    """20,000 columns, 300 rows: H^-1 through Woodbury on the n x n system."""
    X, y = _bag_of_words(300, 20000, 0.01)
    Xt, yt = X[:7], y[:7]
    C = 2.0
    clf = InfluenceLogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=5000)
    clf.fit(X, y)
    assert isinstance(clf._state().solver, CGSolver)
    infl = clf.influence_on_loss(Xt, yt)
    si = clf.self_influence()
    # oracle: H = lam I + (1/n) X^T D X, lam = 1/(C n), D = diag(p(1-p))
    n = X.shape[0]
    w = clf.coef_.ravel()
    p = expit(X @ w)
    D = p * (1 - p)
    lam = 1.0 / (C * n)
    Xd = X.toarray()

    def hinv(B):  # (1/lam) [B - X^T (n lam D^-1 + X X^T)^-1 X B]
        inner = np.linalg.solve(np.diag(n * lam / D) + Xd @ Xd.T, Xd @ B)
        return (B - Xd.T @ inner) / lam

    G = Xd * (p - y)[:, None]
    Gt = Xt.toarray() * (expit(Xt @ w) - yt)[:, None]
    np.testing.assert_allclose(infl, -Gt @ hinv(G.T), rtol=1e-6, atol=1e-8 * np.abs(infl).max())
    np.testing.assert_allclose(si, -np.einsum("ij,ji->i", G, hinv(G.T)), rtol=1e-6, atol=1e-12)
    # sparse and dense input give the same answer
    dense = clone(clf).fit(Xd, y)
    assert _rel(dense.influence_on_loss(Xt.toarray(), yt), infl) < 1e-7


def _zipf_words(n, p, draws, seed=0):
    """Bag of words with Zipf(1) word frequencies: a slowly decaying spectrum."""
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, p + 1)
    words = rng.choice(p, size=(n, draws), p=freq / freq.sum())
    X = sp.csr_matrix((np.ones(n * draws), (np.repeat(np.arange(n), draws), words.ravel())),
                      shape=(n, p))
    X.sum_duplicates()
    X.data = np.log1p(X.data)
    w = rng.standard_normal(p) * (rng.random(p) < 0.05)
    return X, (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(int)


def test_nystrom_power_iterations_approach_the_exact_eigenvectors():
    """With a slowly decaying spectrum (Zipf words), subspace iterations bring the
    rank-r Nystrom preconditioner towards the ideal one built from H's exact top r
    eigenpairs (which maps them onto lam_r): the preconditioned condition number,
    computed densely, falls towards lam_r / lam_min, and CG needs fewer iterations."""
    from skinfluence.solvers import _nystrom_preconditioner

    X, y = _zipf_words(800, 600, 30)
    clf = InfluenceLogisticRegression(C=1.0, tol=1e-12, max_iter=5000).fit(X, y)
    op = clf._state().op
    H = op.matrix()
    lam = np.linalg.eigvalsh(H)[::-1]
    rank = 30
    ideal = lam[rank - 1] / lam[-1]

    def kappa(q):
        F = _nystrom_preconditioner(op, rank, q).half
        ev = np.linalg.eigvalsh(F(F(H).T))  # F^T H F with F symmetric
        return ev[-1] / ev[0]

    kappas = [kappa(q) for q in (0, 1, 2)]
    assert kappas[0] > kappas[1] > kappas[2] >= ideal * (1 - 1e-9)
    # two iterations close most of the gap to the ideal (here 51 -> 32 against 24)
    assert kappas[2] - ideal < 0.4 * (kappas[0] - ideal), (kappas, ideal)
    iterations = []
    ref = clf.set_params(influence_solver="direct").influence_on_loss(X[:5], y[:5])
    for q in (0, 2):
        clf.set_params(influence_solver=ConjugateGradient(
            preconditioner="nystrom", rank=rank, iterated_power=q, products="matrix-free"))
        assert _rel(clf.influence_on_loss(X[:5], y[:5]), ref) < 1e-8
        iterations.append(clf._state().solver.iterations[-1])
    assert iterations[1] < 0.85 * iterations[0], iterations


def test_sparse_never_densifies():
    X, y = _bag_of_words(4000, 20000, 0.005)
    clf = InfluenceLogisticRegression(C=1.0, tol=1e-10, max_iter=2000).fit(X, y)
    dense_bytes = X.shape[0] * X.shape[1] * 8
    tracemalloc.start()
    try:
        clf.influence_on_loss(X[:10], y[:10], kind="remove")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < dense_bytes / 4, (peak, dense_bytes)


# ---------------------------------------------------------- bounded memory
def test_memory_is_bounded_by_chunks():
    """Peak extra memory stays well under a copy of X plus the output."""
    rng = np.random.default_rng(0)
    n, p = 300_000, 50
    X = rng.standard_normal((n, p))
    y = (X[:, 0] + rng.standard_normal(n) > 0).astype(int)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    clf.self_influence()  # build the cached state outside the measurement
    tracemalloc.start()
    try:
        out = clf.influence_on_loss(X[:10], y[:10])
        si = clf.self_influence()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (10, n) and si.shape == (n,)
    assert peak < 0.5 * (X.nbytes + out.nbytes), (peak, X.nbytes)


@pytest.mark.parametrize("solver, option", [
    (ConjugateGradient(rank=0), "rank"), (ConjugateGradient(preconditioner="ilu"),
                                            "preconditioner"),
    (LiSSA(repeats=0), "repeats"), (LiSSA(batch_size=0), "batch_size"),
    (LiSSA(scale=np.nan), "scale"), (LiSSA(scale=-1.0), "scale"), (LiSSA(depth=-1), "depth"),
    (LiSSA(tol=0.0), "tol"), (LiSSA(tol=1.5), "tol"), (LiSSA(max_depth=0), "max_depth"),
    (LiSSA(preconditioner="nystrom"), "preconditioner"), (LiSSA(acceleration="momentum"),
                                                          "acceleration"),
    (ConjugateGradient(maxiter=-5), "maxiter"), (ConjugateGradient(tol=np.nan), "tol"),
    (ConjugateGradient(batch_size=0), "batch_size"),
    (ConjugateGradient(iterated_power=-1), "iterated_power"),
    (ConjugateGradient(preconditioner="ilu"), "preconditioner"),
])
def test_bad_solver_options_are_refused_by_name(cancer, solver, option):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    with pytest.raises(ValueError, match=f"'{option}' parameter of"):
        clf.set_params(influence_solver=solver).influence_on_loss(Xt[:2], yt[:2])


@pytest.mark.parametrize("damping", [-1e-3, np.nan, np.inf])
def test_bad_damping_set_after_fit_is_refused(cancer, damping):
    from skinfluence import explain

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    clf.influence_on_loss(Xt[:2], yt[:2])  # a cached state must not hide the new value
    with pytest.raises(ValueError, match="damping"):
        clf.set_params(damping=damping).self_influence()
    with pytest.raises(ValueError, match="damping"):
        explain(clf.set_params(damping=0.0), damping=damping)


def test_newton_kind_memory_is_bounded_like_the_first_order_kind():
    from sklearn.datasets import make_classification

    X, y = make_classification(40_200, 10, random_state=0)
    clf = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X[:40_000],
                                                                               y[:40_000])
    clf.self_influence()  # factor H outside the measurement
    peaks = {}
    for kind in ("remove", "newton"):
        tracemalloc.start()
        out = clf.influence_on_loss(X[40_000:], y[40_000:], kind=kind)
        peaks[kind] = tracemalloc.get_traced_memory()[1] / out.nbytes
        tracemalloc.stop()
        del out
    # the answer is 200 x 40,000 floats; before chunking by test rows newton took 5x
    assert peaks["newton"] <= max(1.2 * peaks["remove"], 1.5), peaks


def test_an_answer_that_cannot_fit_is_refused_before_any_work(cancer, monkeypatch):
    import skinfluence._mixin as mixin

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    monkeypatch.setattr(mixin, "available_memory", lambda: 10_000)  # 10 kB left
    monkeypatch.setattr(mixin, "SMALL_ANSWER_BYTES", 0)  # small answers skip the check
    for call in (lambda: clf.influence_on_loss(Xt, yt, kind="newton"),
                 lambda: clf.influence_on_params(),
                 lambda: clf.perturbation_influence(Xt[:5], yt[:5])):
        with pytest.raises(MemoryError, match=r"GiB.*fewer test rows"):
            call()
    assert clf.self_influence().shape == (len(y),)  # an answer of n floats is not refused


def test_material_damping_is_reported(cancer):
    from skinfluence import DampingWarning

    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    lam_min = np.linalg.eigvalsh(clf.hessian())[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DampingWarning)
        clf.set_params(damping=1e-4 * lam_min).self_influence()  # 0.01%: silent
    with pytest.warns(DampingWarning, match=r"of the smallest curvature") as record:
        clf.set_params(damping=lam_min).self_influence()
    # damping / (lam_min + damping) = 50%, from a few inverse power iterations
    assert re.search(r"is (4[5-9]|5[0-5])% of", str(record[0].message))
    # without a factor, from Lanczos on the products (it said nothing for CG or LiSSA)
    for solver in ("cg", "lissa"):
        clf.set_params(influence_solver=solver, damping=1e-4 * lam_min)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DampingWarning)
            clf.influence_on_loss(Xt[:2], yt[:2])
        with pytest.warns(DampingWarning, match=r"is (4[5-9]|50)% of the smallest"):
            clf.set_params(damping=lam_min).influence_on_loss(Xt[:2], yt[:2])


@pytest.mark.parametrize("loss_name", ["log", "ovr", "softmax", "hinge", "squared", "signed"])
def test_closed_form_derivatives_equal_autograd(loss_name):
    """The losses' closed-form G and A (the fast path) equal autograd's."""
    from skinfluence.curvature import autograd_derivatives, output_derivatives
    from skinfluence.losses import (
        LogLoss, OneVsRestLogLoss, SignedSquaredLoss, SmoothHinge, SoftmaxLoss, SquaredLoss)

    rng = np.random.default_rng(0)
    n, K = 50, 4
    loss, Y = {
        "log": (LogLoss(), rng.integers(0, 2, n).astype(float)),
        "ovr": (OneVsRestLogLoss(), OneVsRestLogLoss().encode(rng.integers(0, K, n), K)),
        "softmax": (SoftmaxLoss(), SoftmaxLoss().encode(rng.integers(0, K, n), K)),
        "hinge": (SmoothHinge(0.2), SmoothHinge().encode(rng.integers(0, K, n), K)),
        "squared": (SquaredLoss(), rng.normal(size=(n, K))),
        "signed": (SignedSquaredLoss(), SignedSquaredLoss().encode(rng.integers(0, K, n), K)),
    }[loss_name]
    F = 3 * rng.normal(size=(n, 1 if loss_name == "log" else K))
    G, A = output_derivatives(loss, Y, F)
    G_ad, A_ad = autograd_derivatives(loss, Y, F)
    np.testing.assert_allclose(G, G_ad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(A, A_ad, rtol=1e-12, atol=1e-12 * np.abs(A_ad).max())
    np.testing.assert_allclose(output_derivatives(loss, Y, F, order=1), G_ad, rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("K", [1, 3])
def test_sparse_products_on_threads_equal_the_dense_products(monkeypatch, K):
    """The sparse Hessian product runs its row chunks on threads (one split into
    one chunk per CPU when a single chunk would hold every row); it equals the
    same product on the dense rows, for all rows, several chunks and a mini-batch."""
    from skinfluence import curvature
    from skinfluence.curvature import HessianOperator

    rng = np.random.default_rng(0)
    n, d = 6000, 40
    Xs = sp.random(n, d, density=0.1, format="csr", random_state=0)
    Xd = Xs.toarray()
    A = rng.random((n, K, K))
    A = A @ A.transpose(0, 2, 1)
    s = rng.random(n) + 0.5
    pen = np.full(K * (d + 1), 1e-3)
    V = rng.standard_normal((K * (d + 1), 5))
    sparse, dense = (HessianOperator(P, A, s, True, pen) for P in (Xs, Xd))
    monkeypatch.setattr(curvature, "sparse_workers", lambda: 2)
    ref = dense.matvec(V)
    np.testing.assert_allclose(sparse.matvec(V), ref, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(curvature, "CHUNK_ELEMENTS", 7 * K * 5)  # many chunks in flight
    np.testing.assert_allclose(sparse.matvec(V), ref, rtol=1e-12, atol=1e-14)
    rows = rng.choice(n, 500, replace=False)
    np.testing.assert_allclose(sparse.matvec(V, rows), dense.matvec(V, rows), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("rows", ["dense", "sparse", "strided"])
def test_gradients_times_equals_the_formed_gradients_product(K, intercept, rows):
    """``gradients_times`` (one output: the rows as they are, no ``[phi, 1]`` copy)
    equals the product with the gradients written out, into ``out`` or not."""
    from skinfluence.curvature import gradients_times

    rng = np.random.default_rng(0)
    n, d, q = 300, 7, 5
    Xd = sp.random(n, d, density=0.4, format="csr", random_state=0).toarray()
    Xd[:, 0] += 1.0
    G = rng.standard_normal((n, K))
    M = rng.standard_normal((K * (d + int(intercept)), q))
    Xt = np.hstack([Xd, np.ones((n, 1))]) if intercept else Xd
    expected = np.stack([np.kron(G[i], Xt[i]) for i in range(n)]) @ M
    wide = np.zeros((n, 2 * d), order="F")
    wide[:, ::2] = Xd
    Phi = {"dense": Xd, "sparse": sp.csr_matrix(Xd), "strided": wide[:, ::2]}[rows]
    kept = Phi.copy()
    np.testing.assert_allclose(gradients_times(Phi, G, M, intercept), expected, rtol=1e-12,
                               atol=1e-12)
    out = np.full((n + 4, q), np.nan)
    res = gradients_times(Phi, G, M, intercept, out=out[2:-2])
    assert np.shares_memory(res, out)
    np.testing.assert_allclose(out[2:-2], expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(out[:2]).all() and np.isnan(out[-2:]).all()
    assert ((Phi != kept).nnz == 0) if sp.issparse(Phi) else np.array_equal(Phi, kept)


@pytest.mark.parametrize("overwrite", [False, True])
def test_direct_solver_pieces_equal_numpy_and_leave_the_matrix_alone(overwrite):
    """The factor's uses (solve, half solve, inverse, the matrix again, the augmented
    quadratic forms) equal numpy's on an unequally scaled H; ``H`` is unchanged
    unless ``overwrite=True`` hands its memory over, which is then factored in place."""
    rng = np.random.default_rng(0)
    P = 40
    A = rng.standard_normal((P, 3 * P)) * np.logspace(-3, 3, P)[:, None]
    H = A @ A.T / (3 * P) + 1e-2 * np.eye(P)
    kept = H.copy()
    solver = DirectSolver(H, overwrite=overwrite)
    assert np.shares_memory(solver._c, H) == overwrite
    if not overwrite:
        np.testing.assert_array_equal(H, kept)
    B = rng.standard_normal((P, 3))
    L = np.linalg.cholesky(kept)
    np.testing.assert_allclose(solver.solve(B), np.linalg.solve(kept, B), rtol=1e-9)
    np.testing.assert_allclose(solver.half_solve(B), np.linalg.solve(L, B), rtol=1e-9)
    np.testing.assert_allclose(solver.inverse(), np.linalg.inv(kept), rtol=1e-9,
                               atol=1e-12 * np.abs(np.linalg.inv(kept)).max())
    np.testing.assert_allclose(solver.matrix(), kept, rtol=1e-12, atol=1e-12 * kept.max())
    Phi = rng.standard_normal((6, P - 1))
    Pt = np.hstack([Phi, np.ones((6, 1))])
    np.testing.assert_allclose(solver.quad_augmented(Phi, True),
                               np.einsum("ip,pi->i", Pt, np.linalg.solve(kept, Pt.T)), rtol=1e-9)
    np.testing.assert_allclose(solver.quad_augmented(Pt, False),
                               np.einsum("ip,pi->i", Pt, np.linalg.solve(kept, Pt.T)), rtol=1e-9)


def test_lissa_measures_its_mini_batch_noise_across_repeats(cancer):
    """With repeats >= 2 the runs' spread is the standard error of their average: it
    predicts the actual error against the direct solve (within 2x) and warns above
    tol, once; one run, or full batches, measure nothing and say nothing of it."""
    X, y, _, _ = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    state = clf._state()
    B = state.train_gradients(np.arange(3)).T
    ref = state.solver.solve(B)
    clf.set_params(influence_solver=LiSSA(batch_size=128, repeats=4, random_state=0))
    solver = clf._state().solver
    with pytest.warns(ConvergenceWarning, match="standard error") as caught:
        got = solver.solve(B)
    assert sum("standard error" in str(w.message) for w in caught) == 1
    err = np.linalg.norm(got - ref, axis=0) / np.linalg.norm(ref, axis=0)
    assert np.all(solver.noise > err / 2) and np.all(solver.noise < 2 * err)
    clf.set_params(influence_solver=LiSSA(batch_size=128, random_state=0))
    one = clf._state().solver
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one.solve(B)
    assert one.noise is None
    clf.set_params(influence_solver=LiSSA(batch_size=8, repeats=3, max_depth=200,
                                          random_state=0))
    with pytest.warns(ConvergenceWarning) as caught:
        clf._state().solver.solve(B)
    # once, not once per run (the estimate's warning at build time is another)
    assert sum("stopped after" in str(w.message) for w in caught) == 1


def test_direct_solver_judges_against_a_given_scale():
    """Equilibrated by its own diagonal, a decoupled tiny curvature looks healthy;
    against a reference diagonal (the full Hessian's, for a fold's refit) it is the
    singular matrix it is relative to that curvature."""
    from skinfluence.exceptions import SingularHessianError
    from skinfluence.solvers import DirectSolver

    rng = np.random.default_rng(0)
    B = rng.standard_normal((4, 4))
    H = B @ B.T + 4 * np.eye(4)
    H[3, :] = H[:, 3] = 0.0
    H[3, 3] = 1e-30  # all but rounding of its curvature gone
    b = rng.standard_normal(4)
    np.testing.assert_allclose(H @ DirectSolver(H).solve(b), b, rtol=1e-10)
    reference = np.r_[np.diag(H)[:3], 1.0]
    with pytest.raises(SingularHessianError, match="numerically singular"):
        DirectSolver(H, scale=reference)
    np.testing.assert_allclose(DirectSolver(H, scale=np.diag(H)).solve(b),
                               DirectSolver(H).solve(b), rtol=1e-14)


def test_cg_on_an_exactly_singular_hessian_gives_the_pseudo_inverse_answer():
    """As its docstring says: duplicate columns and no penalty, Direct refuses, CG
    converges to the minimum-norm answer (pinv(H) applied to the gradients)."""
    from skinfluence import InfluenceRidge
    from skinfluence.exceptions import SingularHessianError

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    X = np.c_[X, X[:, 0]]
    y = X @ rng.standard_normal(5) + rng.standard_normal(80)
    with pytest.raises(SingularHessianError):
        InfluenceRidge(alpha=0).fit(X, y).influence_on_params()
    est = InfluenceRidge(alpha=0, influence_solver=ConjugateGradient()).fit(X, y)
    got = est.influence_on_params()
    grads = est.loss_gradients(X, y)
    want = -grads @ np.linalg.pinv(est.hessian())
    np.testing.assert_allclose(got, want, atol=1e-8 * np.abs(want).max())
