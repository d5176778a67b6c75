"""The demonstration run by ``python -m skinfluence demo``.

Fits an :class:`InfluenceLogisticRegression` on scikit-learn's breast cancer
data, picks a misclassified test point and prints the training rows most
responsible for the mistake, then the training rows with the largest
self-influence (the rows a label audit would check first).
"""

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .linear_model import InfluenceLogisticRegression
from .pipeline import PipelineInfluence


def _table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[j])) for r in rows)) for j, h in enumerate(header)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(v).rjust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def run(top=5, out=print):
    data = load_breast_cancer()
    X, y = data.data, data.target
    names = data.target_names
    idx = np.arange(len(y))
    X_tr, X_te, y_tr, y_te, i_tr, i_te = train_test_split(
        X, y, idx, test_size=0.3, random_state=0, stratify=y
    )
    pipe = make_pipeline(
        StandardScaler(), InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12)
    ).fit(X_tr, y_tr)
    infl = PipelineInfluence(pipe)
    out(
        f"breast_cancer: {len(y_tr)} training rows, {len(y_te)} test rows, "
        f"test accuracy {pipe.score(X_te, y_te):.3f}"
    )
    proba = pipe.predict_proba(X_te)
    wrong = np.flatnonzero(pipe.predict(X_te) != y_te)
    # the most confidently wrong test point
    t = wrong[np.argmin(proba[wrong, y_te[wrong]])]
    out(
        f"\nTest row {i_te[t]} is '{names[y_te[t]]}' but the model says "
        f"'{names[1 - y_te[t]]}' (P(true class) = {proba[t, y_te[t]]:.3f})."
    )
    removal = infl.influence_on_loss(X_te[t : t + 1], y_te[t : t + 1], kind="remove")[0]
    test_loss = -np.log(proba[t, y_te[t]])
    out(f"Its log-loss is {test_loss:.3f}. Removing one training row would change it by:")
    order = np.argsort(removal)
    feats = ["mean radius", "mean texture", "worst concave points"]
    cols = [list(data.feature_names).index(f) for f in feats]

    Z_tr, z_te = infl.transform(X_tr), infl.transform(X_te[t : t + 1])

    def refit_change(i):
        # refit the final model without row i (the scaler stays as fitted)
        keep = np.arange(len(y_tr)) != i
        refit = clone(pipe[-1]).fit(Z_tr[keep], y_tr[keep])
        return -np.log(refit.predict_proba(z_te)[0, y_te[t]]) - test_loss

    def rows(sel):
        return [
            [i_tr[i], names[y_tr[i]], f"{removal[i]:+.4f}", f"{refit_change(i):+.4f}"]
            + [f"{X_tr[i, c]:.3g}" for c in cols]
            for i in sel
        ]

    header = ["row", "label", "predicted", "refit"] + feats
    out("\nMost harmful training rows (removing them lowers the test loss):")
    out(_table(header, rows(order[:top])))
    out("\nMost helpful training rows (removing them raises the test loss):")
    out(_table(header, rows(order[::-1][:top])))
    si = infl.self_influence()
    out("\nTraining rows with the largest self-influence (check these labels first):")
    out(
        _table(
            ["row", "label", "self-influence", "P(label)"],
            [
                [i_tr[i], names[y_tr[i]], f"{si[i]:.4f}",
                 f"{pipe.predict_proba(X_tr[i : i + 1])[0, y_tr[i]]:.3f}"]
                for i in np.argsort(si)[:top]
            ],
        )
    )
    out(
        "\n'predicted' is the first-order change of the test point's log-loss when "
        "that row is removed (influence_on_loss, kind='remove'), computed without "
        "retraining; 'refit' is the actual change after refitting without the row."
    )
    return t, removal
