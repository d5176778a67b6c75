"""Where scikit-learn users put the estimator: pipelines, grid search, pandas, pickle."""

import io
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, PipelineInfluence

TIGHT = dict(solver="newton-cholesky", tol=1e-12)


@pytest.fixture(scope="module")
def raw_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300], X[300:320], y[300:320]


def test_pipeline_influence_routes_test_rows_through_earlier_steps(raw_cancer):
    X, y, Xt, yt = raw_cancer
    pipe = make_pipeline(StandardScaler(), InfluenceLogisticRegression(**TIGHT)).fit(X, y)
    pi = PipelineInfluence(pipe)
    # the same model fitted by hand on the scaled rows
    scaler = StandardScaler().fit(X)
    alone = InfluenceLogisticRegression(**TIGHT).fit(scaler.transform(X), y)
    np.testing.assert_allclose(
        pi.influence_on_loss(Xt, yt), alone.influence_on_loss(scaler.transform(Xt), yt),
        rtol=1e-10, atol=1e-14,
    )
    np.testing.assert_allclose(pi.self_influence(), alone.self_influence(), rtol=1e-10)
    np.testing.assert_allclose(
        pi.influence_on_params(kind="remove"), alone.influence_on_params(kind="remove"),
        rtol=1e-10, atol=1e-14,
    )
    assert pi.stationarity().is_stationary


def test_pipeline_influence_refuses_plain_final_step(raw_cancer):
    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = raw_cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="InfluenceLogisticRegression"):
        PipelineInfluence(pipe)


def test_grid_search_best_estimator_answers(raw_cancer):
    X, y, Xt, yt = raw_cancer
    search = GridSearchCV(
        make_pipeline(StandardScaler(), InfluenceLogisticRegression(**TIGHT)),
        {"influencelogisticregression__C": [0.1, 1.0]},
        cv=3,
    ).fit(X, y)
    best = search.best_estimator_
    infl = PipelineInfluence(best).influence_on_loss(Xt, yt)
    assert infl.shape == (len(yt), len(y))
    # the refit best estimator is the same as fitting with the best C directly
    C = search.best_params_["influencelogisticregression__C"]
    direct = make_pipeline(StandardScaler(), InfluenceLogisticRegression(C=C, **TIGHT)).fit(X, y)
    np.testing.assert_allclose(
        infl, PipelineInfluence(direct).influence_on_loss(Xt, yt), rtol=1e-9, atol=1e-14
    )


def test_pandas_dataframes_keep_feature_names(raw_cancer):
    pd = pytest.importorskip("pandas")
    X, y, Xt, yt = raw_cancer
    names = [str(f) for f in load_breast_cancer().feature_names]
    Xs = StandardScaler().fit(X)
    df = pd.DataFrame(Xs.transform(X), columns=names, index=np.arange(1000, 1000 + len(y)))
    dft = pd.DataFrame(Xs.transform(Xt), columns=names)
    clf = InfluenceLogisticRegression(**TIGHT).fit(df, pd.Series(y, index=df.index))
    assert list(clf.feature_names_in_) == names
    ref = InfluenceLogisticRegression(**TIGHT).fit(df.to_numpy(), y)
    np.testing.assert_allclose(
        clf.influence_on_loss(dft, pd.Series(yt)), ref.influence_on_loss(dft.to_numpy(), yt),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="feature names"):
        clf.influence_on_loss(dft[names[::-1]], yt)


def test_clone_and_pickle(raw_cancer):
    X, y, Xt, yt = raw_cancer
    X = StandardScaler().fit_transform(X)
    Xt = (Xt - X.mean(0)) / 1.0
    clf = InfluenceLogisticRegression(C=0.5, damping=1e-6, **TIGHT)
    c = clone(clf)
    assert c.get_params() == clf.get_params()
    clf.fit(X, y)
    before = clf.influence_on_loss(Xt[:5], yt[:5])
    buf = io.BytesIO()
    pickle.dump(clf, buf)
    size_with_cache = len(buf.getvalue())
    restored = pickle.loads(buf.getvalue())
    np.testing.assert_array_equal(restored.influence_on_loss(Xt[:5], yt[:5]), before)
    # the cached factorisation is not pickled: the pickle holds the model and its data
    fresh = pickle.dumps(clone(clf).fit(X, y))
    assert size_with_cache == len(fresh)


def test_damping_changes_the_hessian_as_documented(raw_cancer):
    X, y, Xt, yt = raw_cancer
    X = StandardScaler().fit_transform(X)
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y)
    H = clf.hessian()
    G = clf.loss_gradients(X, y)
    Gt = clf.loss_gradients(Xt[:3], yt[:3])
    lam = 0.05
    clf.set_params(damping=lam)
    expected = -Gt @ np.linalg.solve(H + lam * np.eye(len(H)), G.T)
    np.testing.assert_allclose(clf.influence_on_loss(Xt[:3], yt[:3]), expected, rtol=1e-9)


def test_demo_runs_and_its_refits_agree():
    from skinfluence._demo import run

    lines = []
    t, removal = run(top=3, out=lines.append)
    text = "\n".join(lines)
    assert "Most harmful training rows" in text and "self-influence" in text
    # the printed "predicted" and "refit" columns agree in sign and roughly in size
    table = [ln for ln in text.splitlines() if ln.strip()[:1].isdigit() and ("+" in ln or "-0." in ln)]
    pairs = []
    for ln in table:
        parts = ln.split()
        try:
            pairs.append((float(parts[2]), float(parts[3])))
        except (ValueError, IndexError):
            continue
    assert len(pairs) >= 6
    for predicted, refit in pairs:
        assert np.sign(predicted) == np.sign(refit)
        assert abs(predicted - refit) <= 0.5 * abs(refit)


def test_library_works_without_dask():
    """Dask is optional: with it unimportable, skinfluence imports and explains."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "import numpy as np, skinfluence\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "X, y = load_breast_cancer(return_X_y=True); X = (X - X.mean(0)) / X.std(0)\n"
        "clf = skinfluence.InfluenceLogisticRegression(solver='newton-cholesky', tol=1e-12)\n"
        "print(clf.fit(X, y).self_influence().shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "(569,)"


@pytest.mark.parametrize("kind", ["ndarray", "dataframe", "csr"])
def test_answers_do_not_change_when_the_caller_edits_the_training_arrays(raw_cancer, kind):
    import scipy.sparse as sp

    X, y, Xt, yt = raw_cancer
    y = y.copy()  # the fixture is shared
    Xs = StandardScaler().fit(X)
    X, Xt = Xs.transform(X), Xs.transform(Xt)
    if kind == "dataframe":
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(X)
        Xt = pd.DataFrame(Xt)
    elif kind == "csr":
        X, Xt = sp.csr_matrix(X), sp.csr_matrix(Xt)
    sw = np.ones(len(y))
    clf = InfluenceLogisticRegression(**TIGHT).fit(X, y, sample_weight=sw)
    before = clf.influence_on_loss(Xt[:3], yt[:3])
    clf._influence_cache.clear()  # force the state to be rebuilt from the stored rows
    if kind == "dataframe":
        X.iloc[0] *= 3.0
    elif kind == "csr":
        X.data *= 3.0
    else:
        X[0] *= 3.0
    y[:5] = 1 - y[:5]
    sw[:5] = 0.0
    np.testing.assert_array_equal(clf.influence_on_loss(Xt[:3], yt[:3]), before)


def test_explain_checks_sparse_training_rows_without_densifying(raw_cancer):
    import scipy.sparse as sp

    from skinfluence import explain

    X, y, Xt, yt = raw_cancer
    Xs = sp.csr_matrix(StandardScaler().fit_transform(X))
    clf = InfluenceLogisticRegression(**TIGHT).fit(Xs, y)
    assert explain(clf, Xs, y).n_train_ == len(y)
    with pytest.raises(ValueError, match="not the rows"):
        explain(clf, Xs[::-1], y)
