"""Every tool x every kind of fitted thing: the same answers, names and row labels.

One model -- a ColumnTransformer (imputation, scaling, one-hot) followed by L2
logistic regression -- reached five ways: the final skinfluence estimator on
transformed rows, the fitted pipeline, a fitted GridSearchCV over it, explain()
of that pipeline, and explain() of the same pipeline with scikit-learn's own
LogisticRegression (same coefficients, read without refitting).
"""

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skinfluence as sk

pd = pytest.importorskip("pandas")

TIGHT = dict(solver="newton-cholesky", tol=1e-12, C=0.5)
KINDS = ["estimator", "pipeline", "search", "explanation", "explained_sklearn"]


def _table(n, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "pclass": rng.choice(["1st", "2nd", "3rd"], n),
        "sex": rng.choice(["female", "male"], n),
        "age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(30, 12, n)),
        "fare": rng.gamma(2.0, 15.0, n),
    }, index=pd.Index([f"p{seed}_{i}" for i in range(n)], name="passenger"))
    logit = (1.5 * (df.sex == "female") - (df.pclass == "3rd") - 0.03 * (df.age.fillna(30) - 30)
             + 0.01 * df.fare - 0.5)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=df.index,
                  name="survived")
    return df, y


def _preprocessing():
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         ["age", "fare"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["pclass", "sex"]),
    ])


@pytest.fixture(scope="module")
def fitted():
    X, y = _table(120, 0)
    X_test, y_test = _table(30, 1)
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)).fit(X, y)
    search = GridSearchCV(
        make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)),
        {"influencelogisticregression__C": [TIGHT["C"]]}, cv=2,
    ).fit(X, y)
    plain = make_pipeline(_preprocessing(), LogisticRegression(**TIGHT)).fit(X, y)
    objects = {
        "estimator": pipe[-1],
        "pipeline": pipe,
        "search": search,
        "explanation": sk.explain(pipe),
        "explained_sklearn": sk.explain(plain, X, y),
    }
    return objects, pipe[:-1], X, y, X_test, y_test


def _rows(kind, pre, X):
    """Test rows as each kind of fitted thing takes them: raw, except for the bare estimator."""
    return pre.transform(X) if kind == "estimator" else X


def _same(a, b, rtol=1e-8):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(np.abs(b).max(), 1e-12))


def _answers(kind, obj, pre, X, y, X_test, y_test):
    """Every tool's answer for one fitted thing, as plain numbers and labels."""
    Xt = _rows(kind, pre, X_test)
    predicted = sk.explain(obj).predict(Xt)
    wrong = np.flatnonzero(predicted != y_test.to_numpy())[:3]
    Xw, yw = (Xt[wrong] if kind == "estimator" else Xt.iloc[wrong]), y_test.iloc[wrong]
    right = np.flatnonzero(predicted == y_test.to_numpy())[:1]  # an attack flips these
    Xr, yr = (Xt[right] if kind == "estimator" else Xt.iloc[right]), y_test.iloc[right]
    ex = sk.explain(obj)
    out = {
        "influence_on_loss": ex.influence_on_loss(Xt, y_test),
        "newton": ex.influence_on_loss(Xt[:3], y_test[:3], kind="newton"),
        "self_influence": ex.self_influence(),
        "influence_on_params": ex.influence_on_params(kind="remove"),
        "perturbation_influence": ex.perturbation_influence(Xw, yw),
        "group_influence_on_loss": ex.group_influence_on_loss(
            Xw, yw, [np.arange(10), (X.sex == "female").to_numpy()], kind="newton"),
        "loss_values": ex.loss_values(Xt, y_test),
        "stationarity": ex.stationarity().newton_step_norm < 1e-6,
        "aggregate_influence": sk.aggregate_influence(obj, Xw, yw),
        "responsible_features": sk.responsible_features(obj, Xw, yw, top=10).to_numpy(),
        "most_influential": sk.most_influential(obj, k=5)[1],
        "most_influential_labels": list(sk.most_influential(obj, k=5, as_frame=True).index),
    }
    table = sk.top_training_rows(obj, Xw, yw, k=3)
    out["top_rows"] = table["change_if_removed"].to_numpy()
    out["top_rows_labels"] = list(table.index)
    res = sk.retrain_without(obj, Xw[:1] if kind == "estimator" else Xw.iloc[:1], yw.iloc[:1],
                             top=3)
    out["retrain_actual"] = res.actual
    out["retrain_labels"] = list(res.to_frame()["train_row"])
    audit = sk.label_audit(obj, X if kind != "estimator" else pre.transform(X), y,
                           Xt, y_test, n_repeats=1, check_fractions=(0.1, 0.3),
                           rankings=("self_influence",), random_state=0)
    out["label_audit"] = audit[["flips_found", "test_accuracy"]].to_numpy()
    attack = sk.training_set_attack(obj, Xr, yr, step=0.1, box=1.0, max_steps=3,
                                    schedule=([0],))
    out["attack"] = [h["target_loss"] for h in attack.history]
    out["attack_labels"] = attack.labels
    return out


def test_every_tool_gives_the_same_answer_for_every_kind_of_fitted_thing(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    answers = {k: _answers(k, obj, pre, X, y, X_test, y_test) for k, obj in objects.items()}
    reference = answers["pipeline"]
    assert reference["stationarity"]
    for kind in KINDS:
        for tool, value in answers[kind].items():
            if tool.endswith("labels"):
                assert value == reference[tool], (kind, tool)
            elif tool == "attack":
                _same(value, reference[tool], rtol=1e-6)  # refits to the fit's tolerance
            else:
                _same(value, reference[tool], rtol=1e-6 if tool in (
                    "retrain_actual", "label_audit") else 1e-8)
    # the rows are labelled by the training DataFrame's index, everywhere
    assert all(label in set(X.index) for label in reference["top_rows_labels"])
    assert all(label in set(X.index) for label in reference["retrain_labels"])


@pytest.mark.parametrize("kind", ["pipeline", "search", "explanation", "explained_sklearn"])
def test_names_come_from_the_fitted_preprocessing(fitted, kind):
    objects, pre, X, y, X_test, y_test = fitted
    ex = sk.explain(objects[kind])
    expected = ["age", "fare", "pclass_1st", "pclass_2nd", "pclass_3rd", "sex_female",
                "sex_male"]
    assert list(ex.feature_names_) == expected
    assert list(ex.influence_on_params(as_frame=True).columns) == expected + ["intercept"]
    feats = sk.responsible_features(objects[kind], X_test, y_test)
    assert set(feats.index) == set(expected)
    table = sk.top_training_rows(objects[kind], X_test.iloc[:2], y_test.iloc[:2], k=2)
    # the model's inputs by name; or the raw rows, when explain() was given them
    shown = list(X.columns) if kind == "explained_sklearn" else expected
    assert list(table.columns[3:]) == shown


def test_labelled_frames_match_the_arrays(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    ex = sk.explain(objects["search"])
    frame = ex.influence_on_loss(X_test, y_test, kind="remove", as_frame=True)
    assert list(frame.index) == list(X_test.index) and list(frame.columns) == list(X.index)
    _same(frame.to_numpy(), ex.influence_on_loss(X_test, y_test, kind="remove"))
    si = ex.self_influence(as_frame=True)
    assert list(si.index) == list(X.index) and si.index.name == "passenger"
    # label and position point at the same row: the table and the frame agree
    table = sk.top_training_rows(objects["search"], k=3)
    for label, value in table["self_influence"].items():
        assert si[label] == value
    groups = ex.group_influence_on_loss(X_test, y_test, {"female": (X.sex == "female")},
                                        as_frame=True)
    assert list(groups.columns) == ["female"]
    # the test rows are named as in every table with training rows (they were
    # 'passenger' here and 'test_passenger' there)
    assert groups.index.name == frame.index.name == "test_passenger"
    bare = objects["estimator"].group_influence_on_loss(
        pre.transform(X_test), y_test, {"female": (X.sex == "female").to_numpy()},
        as_frame=True)
    assert bare.index.name == "test_passenger"  # labelled by y_test's index
    # the bare estimator labels its rows too: the pipeline handed it y's index
    direct = objects["estimator"].influence_on_loss(pre.transform(X_test), y_test, as_frame=True)
    assert list(direct.columns) == list(X.index) and list(direct.index) == list(X_test.index)


def test_perturbation_influence_and_gradients_as_labelled_frames(fitted):
    """The paper's perturbation influence and the loss gradients were positional
    arrays even from a labelled table: now (test row, training row) x input feature,
    and rows x parameter names."""
    objects, pre, X, y, X_test, y_test = fitted
    ex = sk.explain(objects["pipeline"])
    rows, labels = X_test.iloc[:2], y_test.iloc[:2]
    cube = ex.perturbation_influence(rows, labels)
    frame = ex.perturbation_influence(rows, labels, as_frame=True)
    assert frame.index.names == ["test_passenger", "passenger"]
    assert list(frame.index.get_level_values(0).unique()) == list(rows.index)
    assert list(frame.index.get_level_values(1)[:len(X)]) == list(X.index)
    assert list(frame.columns) == list(ex.feature_names_) and frame.columns.name == "feature"
    np.testing.assert_array_equal(frame.to_numpy(), cube.reshape(-1, cube.shape[2]))
    # training row "p0_5", feature "fare": the same number by label and by position
    assert frame.loc[(rows.index[1], "p0_5"), "fare"] == cube[1, 5, list(ex.feature_names_)
                                                              .index("fare")]
    grads = ex.loss_gradients(rows, labels, as_frame=True)
    assert list(grads.index) == list(rows.index) and grads.index.name == "passenger"
    assert list(grads.columns) == ex.parameter_names()
    np.testing.assert_array_equal(grads.to_numpy(), ex.loss_gradients(rows, labels))
    # the bare estimator names its inputs as it was given them (a transformed array)
    bare = objects["estimator"].perturbation_influence(pre.transform(rows), labels,
                                                       as_frame=True)
    assert list(bare.columns) == [f"x{j}" for j in range(cube.shape[2])]
    np.testing.assert_array_equal(bare.to_numpy(), frame.to_numpy())


def test_a_multiindex_keeps_its_levels_in_every_frame():
    """Rows labelled by a MultiIndex (site, id) came back as one axis of tuples named
    train_row; every frame now keeps the levels and their names."""
    X, y = _table(90, 0)
    X.index = pd.MultiIndex.from_arrays([np.repeat(["north", "south", "east"], 30),
                                         np.arange(90)], names=["site", "id"])
    y.index = X.index
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT))
    pipe.fit(X.iloc[:80], y.iloc[:80])
    ex = sk.explain(pipe)
    Xt, yt = X.iloc[80:], y.iloc[80:]
    si = ex.self_influence(as_frame=True)
    assert si.index.equals(X.index[:80]) and si.index.names == ["site", "id"]
    frame = ex.influence_on_loss(Xt, yt, as_frame=True)
    assert frame.columns.equals(X.index[:80])
    assert frame.index.names == ["test_site", "test_id"]
    assert list(frame.index) == list(Xt.index)
    np.testing.assert_array_equal(frame.to_numpy(), ex.influence_on_loss(Xt, yt))
    top = sk.top_training_rows(pipe, k=3)
    assert top.index.names == ["site", "id"]
    order = np.argsort(ex.self_influence(), kind="stable")[:3]
    assert list(top.index) == list(X.index[order])
    assert sk.most_influential(pipe, k=3, as_frame=True).index.equals(top.index)
    issues = sk.find_label_issues(pipe)
    assert issues.index.names == ["site", "id"]
    assert list(issues.index) == list(X.index[issues["position"].to_numpy()])
    cube = ex.perturbation_influence(Xt.iloc[:2], yt.iloc[:2], as_frame=True)
    assert cube.index.names == ["test_site", "test_id", "site", "id"]
    assert cube.index[81] == (*Xt.index[1], *X.index[1])
    loo = ex.loo_predict_proba(as_frame=True)
    assert loo.index.equals(X.index[:80])
    # groups by label tuples or by positions select the same rows
    by_label = ex.group_influence_on_loss(Xt, yt, [[("north", 0), ("north", 1)]])
    np.testing.assert_array_equal(by_label, ex.group_influence_on_loss(Xt, yt, [[0, 1]]))
    # a level without a name: named by its axis, and the named one still set apart
    X.index = X.index.set_names(["site", None])
    y.index = X.index
    ex = sk.explain(pipe.fit(X.iloc[:80], y.iloc[:80]))
    frame = ex.influence_on_loss(X.iloc[80:], y.iloc[80:], as_frame=True)
    assert frame.index.names == ["test_site", "test_row_1"]
    assert frame.columns.names == ["site", "train_row_1"]
    cube = ex.perturbation_influence(X.iloc[80:82], y.iloc[80:82], as_frame=True)
    assert cube.xs("east", level="test_site").shape == (160, cube.shape[1])
    assert sk.top_training_rows(pipe, k=2).index.names == ["site", None]  # as given


def test_raw_training_rows_are_shown_when_given(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    table = sk.top_training_rows(objects["search"], k=4, X_train=X)
    assert list(table.columns[2:]) == list(X.columns)
    pd.testing.assert_frame_equal(table[X.columns], X.loc[table.index])
    shown = sk.top_training_rows(objects["explained_sklearn"], k=4)  # raw rows were given
    pd.testing.assert_frame_equal(shown[X.columns], X.loc[shown.index])


def test_randomized_search_and_nested_search_are_unwrapped(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    rand = RandomizedSearchCV(
        make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)),
        {"influencelogisticregression__C": [TIGHT["C"]]}, n_iter=1, cv=2, random_state=0,
    ).fit(X, y)
    inner = Pipeline([("pre", _preprocessing()), ("clf", GridSearchCV(
        sk.InfluenceLogisticRegression(**TIGHT), {"C": [TIGHT["C"]]}, cv=2))]).fit(X, y)
    ref = sk.explain(objects["pipeline"]).influence_on_loss(X_test, y_test)
    for obj in (rand, inner):
        _same(sk.explain(obj).influence_on_loss(X_test, y_test), ref)


def test_clear_errors_for_things_that_cannot_be_explained(fitted):
    from sklearn.exceptions import NotFittedError

    objects, pre, X, y, X_test, y_test = fitted
    no_refit = GridSearchCV(sk.InfluenceLogisticRegression(**TIGHT), {"C": [0.5, 1.0]}, cv=2,
                            refit=False).fit(pre.transform(X), y)
    with pytest.raises(ValueError, match="refit=True"):
        sk.top_training_rows(no_refit, k=2)
    plain = objects["explained_sklearn"].estimator
    with pytest.raises(TypeError, match=r"explain\(model, X_train, y_train\)"):
        sk.most_influential(plain, k=2)
    with pytest.raises(NotFittedError):
        sk.top_training_rows(
            make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression()), k=2)
    with pytest.raises(ValueError, match="rows"):
        sk.explain(objects["pipeline"], X.iloc[:10], y.iloc[:10])
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            sk.top_training_rows(objects["pipeline"], k=bad)
        with pytest.raises(ValueError, match="positive integer"):
            sk.most_influential(objects["pipeline"], k=bad)


def test_explanations_pickle_and_leave_inputs_unchanged(fitted):
    import pickle

    objects, pre, X, y, X_test, y_test = fitted
    X_before, Xt_before, y_before = X.copy(), X_test.copy(), y_test.copy()
    for kind in ("search", "explained_sklearn"):
        ex = sk.explain(objects[kind])
        restored = pickle.loads(pickle.dumps(ex))
        np.testing.assert_array_equal(restored.influence_on_loss(X_test, y_test),
                                      ex.influence_on_loss(X_test, y_test))
        sk.top_training_rows(ex, X_test.iloc[:3], y_test.iloc[:3], k=2)
    pd.testing.assert_frame_equal(X, X_before)
    pd.testing.assert_frame_equal(X_test, Xt_before)
    pd.testing.assert_series_equal(y_test, y_before)


def test_labelled_inputs_are_matched_by_label_or_refused(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    pipe = objects["pipeline"]
    ex = sk.explain(pipe)
    perm = np.random.default_rng(0).permutation(len(X))
    # rows passed for display must be the rows the model kept, in fit order
    with pytest.raises(ValueError, match="not the rows"):
        sk.explain(pipe, X.iloc[perm], y)
    with pytest.raises(ValueError, match="not the labels"):
        sk.explain(pipe, X, 1 - y)
    with pytest.raises(ValueError, match="not the rows"):
        sk.top_training_rows(pipe, k=3, X_train=X.iloc[perm])
    # a boolean Series is aligned on the training labels; labels select rows too
    female = X.sex == "female"
    by_mask = ex.group_influence_on_loss(X_test, y_test, [female.to_numpy()])
    shuffled = female.sample(frac=1.0, random_state=0)
    _same(ex.group_influence_on_loss(X_test, y_test, [shuffled]), by_mask)
    _same(ex.group_influence_on_loss(X_test, y_test, [list(X.index[female])]), by_mask)
    _same(pipe[-1].group_influence_on_loss(pre.transform(X_test), y_test, [shuffled]), by_mask)
    with pytest.raises(ValueError, match="not labels of training rows"):
        ex.group_influence_on_loss(X_test, y_test, [["nobody"]])
    with pytest.raises(ValueError, match=r"0 \.\. 119"):
        ex.group_influence_on_loss(X_test, y_test, [[-1]])
    # test rows and labels that do not line up are refused, not paired by position
    with pytest.raises(ValueError, match="align"):
        ex.influence_on_loss(X_test, y_test.iloc[::-1])
    with pytest.raises(ValueError, match="one-row DataFrame"):
        ex.influence_on_loss(X_test.iloc[0], y_test.iloc[:1])
    # one label for one row is a list, as for scikit-learn (numpy's "at least 1
    # dimension" TypeError before)
    for bad, hint in ((1, r"got int 1\. For one row pass a list, e\.g\. \[1\]"),
                      ({"a": 1}, r"got dict \{'a': 1\}\.$")):
        for call in (lambda: ex.influence_on_loss(X_test.iloc[:1], bad),
                     lambda: pipe[-1].influence_on_loss(pre.transform(X_test.iloc[:1]), bad)):
            with pytest.raises(ValueError, match="one label per test row.*" + hint):
                call()
    _same(ex.influence_on_loss(X_test.iloc[:1], [y_test.iloc[0]]),
          ex.influence_on_loss(X_test.iloc[:1], y_test.iloc[:1]))
    # arguments that would be ignored are refused
    _same(sk.most_influential(pipe, X_test, y_test, k=4)[1],
          sk.most_influential(pipe, X_test, y_test, k=4, which="harmful")[1])
    with pytest.raises(ValueError, match="which='harmful'"):
        sk.most_influential(pipe, X_test, y_test, which="self_influence")
    with pytest.raises(ValueError, match="both X_test and y_test"):
        sk.top_training_rows(pipe, None, y_test)
    with pytest.raises(ValueError, match="damping"):
        sk.explain(pipe, damping=-1.0)


def test_positions_only_model_takes_labels_from_the_rows_shown(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)).fit(
        X, y.to_numpy())  # y without an index: the final step sees no labels
    assert sk.explain(pipe).train_index_ is None
    table = sk.top_training_rows(pipe, k=3, X_train=X)
    reference = sk.top_training_rows(objects["pipeline"], k=3)
    assert list(table.index) == list(reference.index)
    assert list(sk.explain(pipe, X, y).self_influence(as_frame=True).index) == list(X.index)


def test_retraining_arguments(fitted):
    from skinfluence.plotting import plot_retraining

    objects, pre, X, y, X_test, y_test = fitted
    pipe = objects["pipeline"]
    one = sk.retrain_without(pipe, X_test.iloc[:1], y_test.iloc[:1], indices=[3, 7],
                             kinds="remove")
    by_label = sk.retrain_without(pipe, X_test.iloc[:1], y_test.iloc[:1],
                                  indices=list(X.index[[3, 7]]), kinds="remove")
    _same(by_label.actual, one.actual)
    assert list(one.predicted) == ["remove"] and list(one.labels) == list(X.index[[3, 7]])
    with pytest.raises(ValueError, match="empty"):
        sk.retrain_without(pipe, X_test.iloc[:1], y_test.iloc[:1], indices=[])
    with pytest.raises(ValueError, match="newton"):
        plot_retraining(one, kind="newton")
    with pytest.raises(TypeError, match="RetrainingResult"):
        plot_retraining(None)


@pytest.mark.parametrize("scale", [1e-2, 1.0])
def test_saved_retraining_figure_keeps_its_labels_and_ticks_apart(scale):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfluence.plotting import plot_retraining

    class Result:  # the two attributes the plot reads, at the scale of small losses
        actual = scale * np.linspace(-1.5, 1.2, 12)
        predicted = {"remove": 0.9 * actual}

        def pearson(self, kind):
            return 1.0

    ax = plot_retraining(Result())
    fig = ax.figure
    fig.canvas.draw()
    box = fig.bbox
    renderer = fig.canvas.get_renderer()
    for label in (ax.xaxis.label, ax.yaxis.label, ax.title):
        extent = label.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, label.get_text()
    ticks = sorted((t.get_window_extent(renderer) for t in ax.get_xticklabels()
                    if t.get_text()), key=lambda e: e.x0)
    assert all(a.x1 < b.x0 for a, b in zip(ticks, ticks[1:]))  # no tick labels overlap
    plt.close(fig)


def test_unsupported_final_step_is_named_before_data_is_asked_for():
    from sklearn.ensemble import RandomForestClassifier

    X, y = _table(60, 2)
    forest = make_pipeline(_preprocessing(), RandomForestClassifier(n_estimators=3)).fit(X, y)
    with pytest.raises(TypeError, match="cannot read the objective of RandomForest"):
        sk.explain(forest)


def test_integer_labels_are_not_read_as_positions():
    # a RangeIndex frame split by train_test_split: the training labels are integers
    # that are not 0 .. n-1, so a label list such as [277, 379] also looks like positions
    from sklearn.model_selection import train_test_split

    X, y = _table(160, 2)
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)).fit(
        X_tr, y_tr)
    x, t = X_te.iloc[[0]], y_te.iloc[[0]]
    top = sk.top_training_rows(pipe, x, t, k=2)
    # labels as an Index (a result's .index) round-trip to the rows shown
    res = sk.retrain_without(pipe, x, t, indices=top.index, kinds="remove")
    assert list(res.labels) == list(top.index)
    assert list(res.indices) == [X_tr.index.get_loc(label) for label in top.index]
    _same(res.predicted["remove"][0], top["change_if_removed"].to_numpy())
    # positions as a numpy array
    pos = np.array([0, 5])
    res = sk.retrain_without(pipe, x, t, indices=pos, kinds="remove")
    assert list(res.labels) == list(X_tr.index[pos])
    # a group by labels is the sum of its rows' first-order changes
    group = sk.explain(pipe).group_influence_on_loss(x, t, [top.index])
    np.testing.assert_allclose(group[0, 0], top["change_if_removed"].sum(), rtol=1e-10)
    # a list could be either: refused, whether or not its values are valid positions
    ambiguous = [int(v) for v in X_tr.index[:2]]
    for call in (lambda: sk.retrain_without(pipe, x, t, indices=ambiguous),
                 lambda: sk.explain(pipe).group_influence_on_loss(x, t, [ambiguous])):
        with pytest.raises(ValueError, match="labels or positions"):
            call()


@pytest.mark.parametrize("final", ["skinfluence", "sklearn"])
def test_explanation_refuses_a_refitted_model(final):
    # a notebook re-runs its fit cell on other rows: the old explanation's labels and
    # preprocessing no longer match the model's numbers
    X, y = _table(120, 3)
    est = (sk.InfluenceLogisticRegression(**TIGHT) if final == "skinfluence"
           else LogisticRegression(**TIGHT))
    pipe = make_pipeline(_preprocessing(), est).fit(X.iloc[:60], y.iloc[:60])
    ex = sk.explain(pipe, X.iloc[:60], y.iloc[:60])
    before = ex.self_influence(as_frame=True)
    assert list(before.index) == list(X.index[:60])
    pipe.fit(X.iloc[60:], y.iloc[60:])
    with pytest.raises(ValueError, match="refitted or changed after the explanation"):
        ex.self_influence(as_frame=True)
    with pytest.raises(ValueError, match="refitted or changed after the explanation"):
        sk.top_training_rows(ex, k=2)
    ex = sk.explain(pipe, X.iloc[60:], y.iloc[60:])
    fresh = ex.self_influence(as_frame=True)
    assert list(fresh.index) == list(X.index[60:])
    # a pickled explanation keeps its model's identity: still usable
    import pickle

    again = pickle.loads(pickle.dumps(ex))
    _same(again.self_influence(), ex.self_influence())
    # the preprocessing alone refitted: test rows would be scaled unlike the kept rows
    pipe[0].fit(X.iloc[:60])
    with pytest.raises(ValueError, match="refitted or changed"):
        ex.influence_on_loss(X.iloc[:2], y.iloc[:2])
    # a search refitted puts a new best estimator in place and leaves the explained one
    # as it was: its answers would describe the previous search
    search = GridSearchCV(make_pipeline(_preprocessing(), est), {pipe.steps[-1][0] + "__C": [0.5, 1.0]},
                          cv=3)
    search.fit(X.iloc[:60], y.iloc[:60])
    ex = sk.explain(search, X.iloc[:60], y.iloc[:60])
    ex.self_influence()
    search.fit(X.iloc[60:], y.iloc[60:])
    with pytest.raises(ValueError, match="refitted or changed after the explanation"):
        ex.self_influence()


def test_messages_name_what_the_user_called(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    pipe = objects["pipeline"]
    with pytest.raises(ValueError, match="got 2 test rows"):
        sk.smallest_flip_set(pipe, X_test.iloc[:2])
    ridge = sk.InfluenceRidge().fit(pre.transform(X), y.to_numpy() * 1.0)
    with pytest.raises(ValueError, match=r"use loo_predict\(\)"):
        ridge.loo_predict_proba()
    with pytest.raises(ValueError, match="method='predict'"):
        ridge.approx_cross_val_predict("decision_function")
    with pytest.raises(ValueError, match="Unknown response method 'bogus'; use one of method="):
        ridge.approx_cross_val_predict("bogus")
    with pytest.raises(ValueError, match="not a classifier"):
        sk.label_audit(make_pipeline(_preprocessing(), sk.InfluenceRidge()), X, y * 1.0,
                       X_test, y_test * 1.0)
    from skinfluence.plotting import plot_influence_vs_distance
    with pytest.raises(ValueError, match="lengths"):
        plot_influence_vs_distance(np.zeros(5), np.zeros(3))


def test_warnings_point_at_the_callers_line():
    X, y = _table(80, 4)

    def loose():  # stopped far from the optimum: influence warns on first use
        pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(max_iter=2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pipe.fit(X, y)

    for call in (lambda: loose()[-1].self_influence(),
                 lambda: sk.explain(loose()).influence_on_loss(X.iloc[:2], y.iloc[:2]),
                 lambda: sk.top_training_rows(loose(), X.iloc[:2], y.iloc[:2], k=2)):
        with pytest.warns(sk.StationarityWarning) as record:
            call()
        assert record[0].filename == __file__, record[0].filename


def test_frames_of_one_named_table_have_distinct_axis_names(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    # X and X_test carry an index named "passenger": the two axes must not share it,
    # and the training rows keep it, as in self_influence and top_training_rows
    ex = sk.explain(objects["pipeline"])
    frame = ex.influence_on_loss(X_test.iloc[:2], y_test.iloc[:2], as_frame=True)
    assert (frame.index.name, frame.columns.name) == ("test_passenger", "passenger")
    assert ex.self_influence(as_frame=True).index.name == "passenger"
    long = frame.stack().reset_index()
    assert list(long.columns[:2]) == ["test_passenger", "passenger"] and len(long) == 2 * len(X)


def test_multiclass_prediction_influence_as_a_long_frame():
    X, y = _table(90, 5)
    y3 = pd.Series(np.where(X.pclass == "1st", "a", np.where(X.sex == "male", "b", "c")),
                   index=X.index)
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)).fit(X, y3)
    ex = sk.explain(pipe)
    cube = ex.influence_on_prediction(X.iloc[:2], kind="remove")
    rows = pipe[:-1].transform(X.iloc[:2])
    for frame in (ex.influence_on_prediction(X.iloc[:2], kind="remove", as_frame=True),
                  pipe[-1].influence_on_prediction(rows, kind="remove", as_frame=True)):
        assert list(frame.columns) == ["a", "b", "c"] and frame.shape == (2 * len(X), 3)
        np.testing.assert_array_equal(frame.to_numpy(), cube.reshape(-1, 3))
        assert frame.index[len(X) + 4][1] == X.index[4]
    labelled = ex.influence_on_prediction(X.iloc[:2], kind="remove", as_frame=True)
    assert labelled.index[len(X) + 4] == (X.index[1], X.index[4])


def test_multi_output_targets_keep_their_column_names():
    """A DataFrame target's columns name the outputs in every labelled result, in
    coef_'s order: each named column of the leave-one-out predictions equals
    scikit-learn's leave-one-out refits on that target alone."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.standard_normal((40, 3)), columns=["a", "b", "c"],
                     index=[f"r{i}" for i in range(40)])
    Y = pd.DataFrame({"volume": 2 * X.b + rng.standard_normal(40),
                      "price": X.a + 0.1 * rng.standard_normal(40)}, index=X.index)
    for fitted in (sk.explain(Ridge(alpha=0.5).fit(X, Y), X, Y),
                   sk.InfluenceRidge(alpha=0.5).fit(X, Y),
                   sk.explain(make_pipeline(StandardScaler(), sk.InfluenceRidge(alpha=0.5))
                              .fit(X, Y))):
        loo = fitted.loo_predict(as_frame=True)
        assert list(loo.columns) == ["volume", "price"] and list(loo.index) == list(X.index)
        cube = fitted.influence_on_prediction(X.iloc[:2], as_frame=True)
        assert cube.columns.name == "output" and list(cube.columns) == ["volume", "price"]
        names = list(fitted.parameter_names())
        assert names[-2:] == ["volume:intercept", "price:intercept"]
    # alignment against refits, on the explained scikit-learn model
    ex = sk.explain(Ridge(alpha=0.5).fit(X, Y), X, Y)
    loo = ex.loo_predict(as_frame=True)
    for name in Y:
        refits = cross_val_predict(Ridge(alpha=0.5), X, Y[name], cv=LeaveOneOut())
        np.testing.assert_allclose(loo[name].to_numpy(), refits, rtol=1e-9)
    params = ex.influence_on_params(kind="newton", as_frame=True)  # exact for least squares
    keep = X.index != "r7"
    refit = Ridge(alpha=0.5).fit(X[keep], Y["price"][keep])
    full = Ridge(alpha=0.5).fit(X, Y["price"])
    np.testing.assert_allclose(params.loc["r7", ["price:a", "price:b", "price:c"]].to_numpy(),
                               refit.coef_ - full.coef_, rtol=1e-8)
    # a target given as an array has numbered outputs
    plain = sk.InfluenceRidge(alpha=0.5).fit(X, Y.to_numpy())
    assert list(plain.loo_predict(as_frame=True).columns) == [0, 1]
    assert not hasattr(plain, "target_names_")


def test_groups_and_rows_resolve_against_the_labels_shown():
    # y as an array: the final step sees no labels, the explanation takes them from X
    X, y = _table(120, 6)
    X_tr = X.iloc[20:]
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT)).fit(
        X_tr, y.iloc[20:].to_numpy())
    ex = sk.explain(pipe, X_tr, y.iloc[20:].to_numpy())
    x, t = X.iloc[:1], y.iloc[:1]
    labels = pd.Index(X_tr.index[[5, 17, 40]])
    by_labels = ex.group_influence_on_loss(x, t, [labels])
    by_positions = ex.group_influence_on_loss(x, t, [np.array([5, 17, 40])])
    _same(by_labels, by_positions)
    np.testing.assert_allclose(by_labels[0, 0], ex.influence_on_loss(
        x, t, kind="remove")[0, [5, 17, 40]].sum(), rtol=1e-10)
    mask = pd.Series(X_tr.index.isin(labels), index=X_tr.index).sample(frac=1.0,
                                                                        random_state=1)
    _same(ex.group_influence_on_loss(x, t, [mask]), by_labels)


def test_number_labels_selection_rules():
    from skinfluence._frames import positions_of

    ints = pd.Index([50, 10, 30, 20])
    np.testing.assert_array_equal(positions_of(pd.Index([30, 50]), ints, 4), [2, 0])
    np.testing.assert_array_equal(positions_of(np.array([3, 1]), ints, 4), [3, 1])
    for ambiguous in ([30, 50], pd.Series([0, 2]), 2, (1,)):
        with pytest.raises(ValueError, match="labels or positions"):
            positions_of(ambiguous, ints, 4)
    floats = pd.Index([3.0, 1.0, 0.0, 2.0])  # a permutation of 0 .. n-1 as floats
    np.testing.assert_array_equal(positions_of(pd.Index([1, 2]), floats, 4), [1, 3])
    with pytest.raises(ValueError, match="labels or positions"):
        positions_of([1, 2], floats, 4)
    # 0 .. n-1 in order: labels are positions, anything goes
    np.testing.assert_array_equal(positions_of([2, 0], pd.RangeIndex(4), 4), [2, 0])
    multi = pd.MultiIndex.from_tuples([(1, "a"), (1, "b"), (2, "a")])
    np.testing.assert_array_equal(positions_of([(2, "a"), (1, "a")], multi, 3), [2, 0])
    np.testing.assert_array_equal(positions_of(multi[[1]], multi, 3), [1])
    with pytest.raises(ValueError, match="not unique"):
        positions_of(pd.Index([7]), pd.Index([7, 7, 8]), 3)
    with pytest.raises(ValueError, match="one-dimensional"):
        positions_of(np.array([[0, 1]]), None, 3)


def test_scikit_learns_feature_name_warnings_point_at_the_callers_line():
    """Test rows without the names the model was fitted with: scikit-learn's warning
    is issued at the user's line, not inside scikit-learn."""
    X, y = _table(60, 7)
    Xn = X[["age", "fare"]].fillna(0.0)
    clf = sk.InfluenceLogisticRegression(**TIGHT).fit(Xn, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.influence_on_loss(Xn.to_numpy()[:2], y.to_numpy()[:2])
        clf.influence_on_prediction(Xn.to_numpy()[:2])
    named = [w for w in caught if "feature names" in str(w.message)]
    assert len(named) == 2 and all(w.filename == __file__ for w in named), [
        (w.filename, str(w.message)) for w in caught]


def test_sparse_rows_are_shown_by_the_features_they_have():
    """top_training_rows on sparse text showed every one of thousands of mostly empty
    columns (and densified the whole matrix when the rows were given); it shows the
    features some shown row has, with the rows' own values."""
    import scipy.sparse as sp

    X = sp.random(300, 2000, density=0.005, format="csr", random_state=0)
    total = np.asarray(X.sum(axis=1)).ravel()
    y = (total > np.median(total)).astype(int)
    clf = sk.InfluenceLogisticRegression(C=10.0, tol=1e-10).fit(X, y)
    order = np.argsort(clf.self_influence(), kind="stable")[:3]
    for table in (sk.top_training_rows(clf, k=3),
                  sk.top_training_rows(sk.explain(clf, X, y), k=3)):
        features = table.drop(columns=["self_influence", "label"])
        rows = X[order].toarray()
        has = np.flatnonzero(np.abs(rows).sum(axis=0))
        assert list(features.columns) == [f"x{j}" for j in has]
        np.testing.assert_array_equal(features.to_numpy(), rows[:, has])


@pytest.mark.parametrize("make", [
    lambda: sk.InfluenceLogisticRegression(),
    lambda: sk.SmoothHingeSVC(),
    lambda: sk.InfluenceRidge(),
    lambda: sk.InfluencePoissonRegressor(),
], ids=["logistic", "svm", "ridge", "poisson"])
def test_labels_of_other_rows_are_refused_at_fit(make):
    """y (or sample_weight) labelled with other rows than X's would pair every row with
    another row's label by position; a default RangeIndex or an array pairs by position."""
    rng = np.random.default_rng(0)
    ids = pd.Index([f"c{i}" for i in range(40)], name="customer")
    X = pd.DataFrame(rng.normal(size=(40, 3)), index=ids, columns=list("abc"))
    y = pd.Series((X.a > 0).astype(int) + 1, index=ids)
    shuffled = y.sample(frac=1, random_state=0)
    with pytest.raises(ValueError, match=r"another order.*y\.loc\[X\.index\]"):
        make().fit(X, shuffled)
    with pytest.warns(UserWarning, match=r"does not match X's.*'c0' with y row 'c5'"):
        make().fit(X.iloc[:30], y.iloc[5:35])  # taken apart, or a lag on purpose: said
    with pytest.raises(ValueError, match="sample_weight's index"):
        make().fit(X, y, sample_weight=pd.Series(1.0, index=shuffled.index))
    # positional labels are matched by position, as in scikit-learn
    a = make().fit(X, y.to_numpy()).self_influence()
    b = make().fit(X, pd.Series(y.to_numpy())).self_influence()
    _same(b, a)
    _same(make().fit(X.reset_index(drop=True), y).self_influence(), a)


def test_test_labels_of_other_rows_and_refits_on_shuffled_labels_are_refused(fitted):
    objects, pre, X, y, X_test, y_test = fitted
    ex = objects["explanation"]
    for y_other in (y_test.iloc[5:10], y_test.iloc[3:8]):  # sliced apart from X_test[:5]
        with pytest.warns(UserWarning, match=r"y's index does not match X's.*'p1_0' with y r"):
            ex.influence_on_loss(X_test.iloc[:5], y_other)
        with pytest.warns(UserWarning, match="does not match"):
            sk.retrain_without(objects["search"], X_test.iloc[:5], y_other, top=2)
    with pytest.raises(ValueError, match="same labels as X's in another order"):
        ex.influence_on_loss(X_test.iloc[:5], y_test.iloc[:5].iloc[::-1])
    _same(ex.influence_on_loss(X_test.iloc[:5], y_test.iloc[5:10].to_numpy()),
          ex.influence_on_loss(X_test.iloc[:5], y_test.iloc[5:10].set_axis(X_test.index[:5])))
    # a pipeline fitted on y in another row order (its final step saw X as an array):
    # the rows shown would be named after y's labels and show X's values
    shuffled = y.sample(frac=1, random_state=1)
    pipe = make_pipeline(_preprocessing(), sk.InfluenceLogisticRegression(**TIGHT))
    pipe.fit(X, shuffled)
    with pytest.raises(ValueError, match=r"fitted y's index.*another order.*refit with y"):
        sk.top_training_rows(pipe, k=2, X_train=X)
    # both X and y in another order than the fit's: X is named first
    with pytest.raises(ValueError, match="X is not the rows"):
        sk.explain(objects["pipeline"], X.sample(frac=1, random_state=0),
                   y.sample(frac=1, random_state=0))


def test_labels_that_differ_only_in_dtype_or_mix_types_are_compared_as_labels():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(40, 2)), index=pd.Index(np.arange(40), name="id"))
    y = pd.Series((X[0] > 0).astype(int).to_numpy(),
                  index=pd.Index(np.arange(40), dtype="Int64", name="id"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nullable Int64 against int64 labels: the same rows
        a = sk.InfluenceLogisticRegression().fit(X, y).self_influence()
    _same(sk.InfluenceLogisticRegression().fit(X, y.to_numpy()).self_influence(), a)
    mixed = pd.Index([i if i % 2 else f"s{i}" for i in range(40)], dtype=object)
    Xm, ym = X.set_axis(mixed), y.set_axis(mixed)
    with pytest.raises(ValueError, match="another order"):  # not sort_values' TypeError
        sk.InfluenceLogisticRegression().fit(Xm, ym.iloc[::-1])
    # a lag on purpose (tomorrow's label for today's row) is paired by position, and said
    days = pd.date_range("2026-01-01", periods=41, name="day")
    Xd = pd.DataFrame(rng.normal(size=(41, 2)), index=days)
    yd = pd.Series((rng.random(41) > 0.5).astype(int), index=days)
    with pytest.warns(UserWarning, match="2026-01-01.*2026-01-02"):
        lagged = sk.InfluenceLogisticRegression().fit(Xd.iloc[:-1], yd.iloc[1:])
    np.testing.assert_array_equal(lagged._fit_y, yd.to_numpy()[1:])
