"""
===========================================================
Which training rows are responsible for a wrong prediction?
===========================================================

We fit :class:`skinfluence.InfluenceLogisticRegression` -- scikit-learn's
``LogisticRegression`` that also explains itself -- on the breast cancer data,
pick the test point the model gets most confidently wrong, and list the training
rows that pushed it there (harmful) and the ones that pulled it back (helpful).

Then we check the explanation the hard way: retrain the model without each of
the most influential rows and compare the actual change of the test loss with
the prediction made from the influence function, without any retraining.
You will see a table of rows and a scatter plot close to the diagonal.
"""

# %%
# Fit the model inside a pipeline
# -------------------------------
# Influence functions assume the fit reached the optimum, so we ask for a tight
# tolerance (``stationarity()`` reports how close the fit is).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, PipelineInfluence

data = load_breast_cancer(as_frame=True)
X, y = data.data, data.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)
pipe = make_pipeline(
    StandardScaler(), InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12)
).fit(X_train, y_train)
explainer = PipelineInfluence(pipe)
print(explainer.stationarity())

# %%
# The most confidently wrong test point
# -------------------------------------
proba = pipe.predict_proba(X_test)[np.arange(len(y_test)), y_test.to_numpy()]
t = int(np.argmin(proba))
x_t, y_t = X_test.iloc[[t]], y_test.iloc[[t]]
print(f"test row {X_test.index[t]}: true class {data.target_names[y_t.iloc[0]]}, "
      f"P(true class) = {proba[t]:.3f}")

# %%
# Influence of every training row on that test loss
# -------------------------------------------------
# ``kind="remove"`` gives the predicted change of the test loss if the row were
# removed and the model refitted: negative = the row is harmful (removing it
# lowers the loss), positive = helpful.
change = explainer.influence_on_loss(x_t, y_t, kind="remove")[0]
table = X_train[["mean radius", "mean texture", "worst concave points"]].assign(
    label=y_train.map(dict(enumerate(data.target_names))), predicted_change=change
)
print("most harmful:\n", table.sort_values("predicted_change").head(5))
print("most helpful:\n", table.sort_values("predicted_change").tail(5))

# %%
# Check against actual retraining
# -------------------------------
# Refit the final model without each of the 30 most influential rows (the scaler
# stays as fitted, as in the influence function) and measure the test loss.
Z_train = pipe[:-1].transform(X_train)
z_t = pipe[:-1].transform(x_t)
base = -np.log(proba[t])
top = np.argsort(-np.abs(change))[:30]
actual = []
for i in top:
    keep = np.arange(len(y_train)) != i
    refit = clone(pipe[-1]).fit(Z_train[keep], y_train.iloc[keep])
    actual.append(-np.log(refit.predict_proba(z_t)[0, y_t.iloc[0]]) - base)
r = pearsonr(change[top], actual)[0]

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(actual, change[top])
lim = np.abs(np.r_[actual, change[top]]).max() * 1.1
ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1)
ax.set_xlabel("actual change of test loss (retrained)")
ax.set_ylabel("predicted change (influence)")
ax.set_title(f"30 most influential rows, Pearson R = {r:.3f}")
fig.tight_layout()
plt.show()
