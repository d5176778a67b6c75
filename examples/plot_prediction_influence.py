"""
=======================================================================
Which training rows move a prediction, and how many would flip it?
=======================================================================

The paper's influence is on the *loss* at a test point, which needs its label.
Here we ask about what the model *says*:

1. how each training row moves the predicted probability of a test patient
   (``influence_on_prediction``), checked against refits;
2. how the training rows move a whole group's mean predicted probability
   (``influence_on_function`` with any function of the outputs);
3. how many training rows must go before a borderline prediction flips
   (``smallest_flip_set``), confirmed by a refit.
"""

# %%
import autograd.numpy as anp
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence as sk

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
pipe = make_pipeline(StandardScaler(),
                     sk.InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12))
pipe.fit(X_train, y_train)
ex = sk.explain(pipe)

# %%
# 1. One patient's predicted probability of "benign"
# -------------------------------------------------
patient = X_test.iloc[[int(np.argsort(np.abs(pipe.decision_function(X_test)))[3])]]
change = ex.influence_on_prediction(patient, kind="newton", as_frame=True).iloc[0]
print(f"P(benign) = {pipe.predict_proba(patient)[0, 1]:.3f}; the rows that move it most "
      "when removed:")
print(change.reindex(change.abs().sort_values(ascending=False).index).head())

# check the 15 largest against refits without each row
rows = change.abs().sort_values(ascending=False).index[:15]
base = pipe.predict_proba(patient)[0, 1]
actual = []
for label in rows:
    keep = X_train.index != label
    refit = clone(pipe).fit(X_train[keep], y_train[keep])
    actual.append(refit.predict_proba(patient)[0, 1] - base)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(actual, change[rows], s=14)
lim = 1.1 * np.abs(np.r_[actual, change[rows]]).max()
ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1)
ax.set_xlabel("actual change of P(benign), refitted")
ax.set_ylabel("predicted (Newton step)")
ax.set_title(f"Pearson R = {np.corrcoef(actual, change[rows])[0, 1]:.4f}")

# %%
# 2. A group's mean predicted probability
# ---------------------------------------
# Any function of the model's outputs (here the log-odds) over a set of rows,
# written with autograd.numpy; for kind="newton" it receives a batch, so reduce
# over the last axes.
large = X_test[X_test["mean radius"] > X_test["mean radius"].median()]


def mean_benign(F):
    return anp.mean(1.0 / (1.0 + anp.exp(-F[..., 0])), axis=-1)


group = ex.influence_on_function(mean_benign, large, kind="remove", as_frame=True)
print(f"\nmean P(benign) over {len(large)} large tumours: "
      f"{pipe.predict_proba(large)[:, 1].mean():.3f}; removing these rows would lower it most:")
print(group.sort_values().head(3))

# %%
# 3. How robust is a borderline prediction?
# -----------------------------------------
flip = sk.smallest_flip_set(pipe, patient)
print(f"\nremoving {flip.size} of {len(X_train)} training rows ({flip.labels.tolist()}) moves the "
      f"decision value from {flip.value_before:+.3f} to {flip.value_after:+.3f} "
      f"(confirmed by a refit: {flip.confirmed})")
plt.show()
