"""Fit and explain on dask arrays, on a real dask.distributed cluster of worker processes."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from skinfluence import (  # noqa: E402
    InfluenceLogisticRegression,
    SmoothHingeSVC,
    most_influential,
)

NEWTON = dict(solver="newton-cholesky", tol=1e-14, max_iter=1000)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _chunked(X, y, rows=97):
    return da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)


@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_logistic_on_cluster_matches_in_memory(client, request, data):
    X, y, Xt, yt = request.getfixturevalue(data)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    Xd, yd = _chunked(X, y)
    dm = InfluenceLogisticRegression(class_weight="balanced").fit(
        Xd, yd, sample_weight=da.from_array(sw, chunks=97))
    mem = InfluenceLogisticRegression(class_weight="balanced", **NEWTON).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(dm.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dm.intercept_, mem.intercept_, rtol=1e-8, atol=1e-10)
    # influence at identical parameters: to 1e-10 relative
    mem.coef_, mem.intercept_ = dm.coef_.copy(), dm.intercept_.copy()
    mem._influence_cache.clear()
    infl = dm.influence_on_loss(Xt[:5], yt[:5], kind="remove")
    assert isinstance(infl, da.Array) and infl.chunks[1] == Xd.chunks[0]
    ref = mem.influence_on_loss(Xt[:5], yt[:5], kind="remove")
    assert np.abs(infl.compute() - ref).max() <= 1e-10 * np.abs(ref).max()
    si = dm.self_influence()
    assert isinstance(si, da.Array)
    ref_si = mem.self_influence()
    assert np.abs(si.compute() - ref_si).max() <= 1e-10 * np.abs(ref_si).max()
    # top-k blockwise
    idx, vals = most_influential(dm, k=5)
    np.testing.assert_array_equal(idx, np.argsort(ref_si)[:5])
    idx, vals = most_influential(dm, Xt[:5], yt[:5], k=4, which="harmful")
    np.testing.assert_array_equal(idx, np.argsort(ref.sum(0))[:4])
    idx, vals = most_influential(dm, Xt[:5], yt[:5], k=4, which="helpful")
    np.testing.assert_array_equal(idx, np.argsort(-ref.sum(0))[:4])
    # the tools that sum over test rows take the lazy matrix (they crashed on solve_many)
    from skinfluence import aggregate_influence, retrain_without, top_training_rows

    total = aggregate_influence(dm, Xt[:5], yt[:5])
    assert isinstance(total, np.ndarray)
    assert np.abs(total - ref.sum(0)).max() <= 1e-10 * np.abs(ref.sum(0)).max()
    table = top_training_rows(dm, Xt[:5], yt[:5], k=3)
    in_memory = top_training_rows(mem, Xt[:5], yt[:5], k=3)
    np.testing.assert_array_equal(table.index, in_memory.index)
    np.testing.assert_allclose(table["change_if_removed"], in_memory["change_if_removed"],
                               rtol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no numpy argsort of a dask array
        checked = retrain_without(dm, Xt[:2], yt[:2], top=2)  # newton has no dask path
    assert list(checked.predicted) == ["remove"]
    np.testing.assert_array_equal(checked.indices, np.argsort(-np.abs(ref[:2]).sum(0))[:2])
    # the blockwise fit records its settings too: a C changed without a refit is refused
    with pytest.raises(ValueError, match="changed after fit: C=5.0"):
        dm.set_params(C=5.0).self_influence()


def test_smooth_hinge_on_cluster_matches_in_memory(client, cancer):
    X, y, Xt, yt = cancer
    Xd, yd = _chunked(X, y, rows=150)
    dm = SmoothHingeSVC(t=0.1).fit(Xd, yd)
    mem = SmoothHingeSVC(t=0.1).fit(X, y)
    np.testing.assert_allclose(dm.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    mem.coef_, mem.intercept_ = dm.coef_.copy(), dm.intercept_.copy()
    mem._influence_cache.clear()
    ref = mem.influence_on_loss(Xt[:3], yt[:3])
    got = dm.influence_on_loss(Xt[:3], yt[:3]).compute()
    assert np.abs(got - ref).max() <= 1e-10 * np.abs(ref).max()


def test_rbf_on_dask_is_refused_clearly(cancer):
    from skinfluence import RBFSmoothHingeSVC

    X, y, _, _ = cancer
    Xd, yd = _chunked(X, y)
    with pytest.raises(ValueError, match="kernel features"):
        RBFSmoothHingeSVC().fit(Xd, yd)


def test_nan_in_a_dask_array_is_named(cancer):
    X, y, _, _ = cancer
    X = X.copy()
    X[5, 1] = np.nan
    Xd, yd = _chunked(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the pass either
        with pytest.raises(ValueError, match="contains NaN or infinity.*Impute or drop"):
            InfluenceLogisticRegression().fit(Xd, yd)  # scipy's "must not contain infs"


def test_in_memory_only_methods_say_so(cancer):
    X, y, Xt, yt = cancer
    Xd, yd = _chunked(X, y)
    dm = InfluenceLogisticRegression().fit(Xd, yd)
    for call in (lambda: dm.influence_on_params(),
                 lambda: dm.perturbation_influence(Xt[:1], yt[:1]),
                 lambda: dm.group_influence_on_loss(Xt[:1], yt[:1], [[0, 1]])):
        with pytest.raises(NotImplementedError, match="dask array"):
            call()
    with pytest.raises(ValueError, match="newton"):
        dm.influence_on_loss(Xt[:1], yt[:1], kind="newton")


@pytest.mark.parametrize("tol", [1e-13, 1e-15])
def test_blockwise_fit_at_the_float_floor_terminates(client, cancer, tol):
    """A target below what sums over blocks can reach stops, warns, and is the optimum."""
    import warnings

    X, y, _, _ = cancer
    Xd, yd = _chunked(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = InfluenceLogisticRegression(C=0.5, tol=tol, max_iter=1000).fit(Xd, yd)
    assert dm.n_iter_[0] < 40
    mem = InfluenceLogisticRegression(C=0.5, **NEWTON).fit(X, y)
    np.testing.assert_allclose(dm.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    stalls = [w for w in caught if "no longer decreases" in str(w.message)]
    assert not stalls or "max|grad| =" in str(stalls[0].message)


def test_coefficients_set_by_hand_on_dask_are_judged(cancer):
    """On a dask array the stationarity report had no removal scale (ratio NaN), so
    coefficients edited by hand gave other numbers with no warning; the first rows of
    the first block give the scale, as the sampled rows do in memory."""
    from skinfluence import StationarityWarning

    X, y, _, _ = cancer
    est = InfluenceLogisticRegression(tol=1e-10).fit(da.from_array(X, chunks=(100, X.shape[1])),
                                                     da.from_array(y, chunks=100))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StationarityWarning)
        est.self_influence().compute()
    rep = est.stationarity()
    assert rep.ratio < 0.1 and rep.removal_step_norm > 0
    in_memory = InfluenceLogisticRegression(tol=1e-10).fit(X, y).stationarity()
    # the same scale as the in-memory sample's, within the spread of rows
    assert 0.2 < rep.removal_step_norm / in_memory.removal_step_norm < 5
    est.coef_ *= 1.3
    with pytest.warns(StationarityWarning, match="coef_ or intercept_ changed"):
        est.self_influence().compute()
