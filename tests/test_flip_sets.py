"""smallest_flip_set: a few rows whose removal flips a prediction or a sign, verified by refits."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, smallest_flip_set

NEWTON = dict(solver="newton-cholesky", tol=1e-12)


def _refit_without(clf, X, y, rows):
    keep = np.setdiff1d(np.arange(len(y)), rows)
    return clone(clf).fit(X[keep], y[keep])


def test_flip_set_for_a_prediction_is_confirmed_and_minimal_along_its_order(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    f = clf.decision_function(Xt)
    t = int(np.argsort(np.abs(f))[5])  # a test row near the boundary (margin ~1)
    res = smallest_flip_set(clf, Xt[t:t + 1])
    assert res.confirmed and 1 <= res.size <= 10 and res.quantity == "prediction"
    after = _refit_without(clf, X, y, res.rows).decision_function(Xt[t:t + 1])[0]
    assert np.sign(after) != np.sign(f[t])
    np.testing.assert_allclose(res.value_after, after, rtol=1e-6)
    if res.size > 1:  # one row fewer along the removal order does not flip
        before = _refit_without(clf, X, y, res.rows[:-1]).decision_function(Xt[t:t + 1])[0]
        assert np.sign(before) == np.sign(f[t])


def test_flip_set_for_a_coefficient_sign(cancer):
    X, y, _, _ = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    j = int(np.argmin(np.abs(clf.coef_[0])))
    res = smallest_flip_set(clf, coef=j)
    assert res.confirmed and res.quantity == f"coef[x{j}]"
    refit = _refit_without(clf, X, y, res.rows)
    assert np.sign(refit.coef_[0, j]) != np.sign(clf.coef_[0, j])


def test_robust_predictions_are_reported_unconfirmed(cancer):
    X, y, Xt, yt = cancer
    clf = InfluenceLogisticRegression(**NEWTON).fit(X, y)
    t = int(np.argmax(np.abs(clf.decision_function(Xt))))  # the most confident test row
    res = smallest_flip_set(clf, Xt[t:t + 1], max_fraction=0.02)
    assert not res.confirmed and res.size <= 8


def test_flip_sets_name_the_rows_of_a_pipeline(cancer):
    pd = pytest.importorskip("pandas")
    X, y, Xt, _ = cancer
    df = pd.DataFrame(X * 2.0 + 1.0, index=[f"r{i}" for i in range(len(y))])
    pipe = make_pipeline(StandardScaler(), InfluenceLogisticRegression(**NEWTON)).fit(
        df, pd.Series(y, index=df.index))
    test = pd.DataFrame(Xt * 2.0 + 1.0)
    t = int(np.argsort(np.abs(pipe.decision_function(test)))[0])
    res = smallest_flip_set(pipe, test.iloc[[t]])
    assert res.confirmed and list(res.labels) == [f"r{i}" for i in res.rows]
    with pytest.raises(ValueError, match="x_test"):
        smallest_flip_set(pipe)
    with pytest.raises(ValueError, match="is not a parameter"):
        smallest_flip_set(pipe, coef="nope")
    with pytest.raises(ValueError, match="max_fraction"):
        smallest_flip_set(pipe, test.iloc[[t]], max_fraction=0)
    with pytest.raises(ValueError, match="integer position; got 1.7"):
        smallest_flip_set(pipe, coef=1.7)  # was read as parameter 1


@pytest.mark.parametrize("n_classes", [3, 5])
def test_multiclass_flip_sets_are_confirmed_by_a_refit(n_classes):
    """The margin of the class predicted at the fit over the best other class turns
    negative when another class wins; measured as the new winner's lead it never did,
    and no flip was ever confirmed (26 rows removed where one flips it)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(120, 5, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=0.6,
                               random_state=5)
    clf = InfluenceLogisticRegression(**NEWTON).fit(X[:100], y[:100])
    F = np.sort(clf.decision_function(X[100:]), axis=1)
    j = 100 + int(np.argmin(F[:, -1] - F[:, -2]))  # the closest call
    res = smallest_flip_set(clf, X[j:j + 1], max_fraction=0.3)
    assert res.confirmed and res.size <= 3 and res.value_after < 0 < res.value_before
    before = clf.predict(X[j:j + 1])[0]
    refit = _refit_without(clf, X[:100], y[:100], res.rows)
    assert refit.predict(X[j:j + 1])[0] != before
    scores = refit.decision_function(X[j:j + 1])[0]
    k = list(clf.classes_).index(before)
    np.testing.assert_allclose(res.value_after, scores[k] - np.delete(scores, k).max(),
                               rtol=1e-6)
