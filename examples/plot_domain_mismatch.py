"""
==========================================================================
Debugging domain mismatch: which training rows explain a group of errors?
==========================================================================

Koh & Liang (§5.3) trained a readmission model on data in which healthy children
were almost absent (3 of 20 kept), so the model learnt "child => readmitted". The
influence of the training rows on the children's test errors pointed straight at
the few training children, and the perturbation influence at the age feature.

We build the same situation from the breast cancer data: a made-up second hospital
("hospital_B", a one-hot column, 20% of patients) whose benign training cases were
all dropped but 3, from a model on five weak features. You will see the accuracy
gap, the training rows responsible for hospital B's errors (a table indexed by the
original row numbers) and the features that drive them.
"""

# %%
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import (
    InfluenceLogisticRegression,
    aggregate_influence,
    responsible_features,
    top_training_rows,
)

data = load_breast_cancer(as_frame=True)
cols = ["mean texture", "mean smoothness", "mean symmetry", "mean fractal dimension",
        "texture error"]
X = pd.DataFrame(StandardScaler().fit_transform(data.data[cols]), columns=cols)
y = data.target  # 1 = benign
X["hospital_B"] = (np.random.default_rng(0).random(len(y)) < 0.2).astype(float)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
dropped = (X_train["hospital_B"] == 1) & (y_train == 1)
keep = ~dropped | (np.cumsum(dropped) <= 3)  # hospital B keeps 3 benign cases
X_train, y_train = X_train[keep], y_train[keep]
clf = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X_train, y_train)

# %%
# The mismatch: hospital B's test patients are misclassified more often
in_b = X_test["hospital_B"] == 1
errors = in_b & (clf.predict(X_test) != y_test)
print(f"accuracy: hospital B {clf.score(X_test[in_b], y_test[in_b]):.3f}, "
      f"others {clf.score(X_test[~in_b], y_test[~in_b]):.3f}; {errors.sum()} errors in B")

# %%
# Training rows most responsible for hospital B's errors (total test loss)
table = top_training_rows(clf, X_test[errors], y_test[errors], k=5)
print(table[["change_if_removed", "role", "label", "hospital_B"]])

# %%
infl = aggregate_influence(clf, X_test[errors], y_test[errors])
b_rows = (X_train["hospital_B"] == 1).to_numpy()
share = np.abs(infl[b_rows]).sum() / np.abs(infl).sum()
print(f"hospital B is {b_rows.mean():.1%} of the training rows and holds {share:.0%} of "
      "the |influence| on its errors")

# %%
# Which input features of the responsible rows drive the errors?
print(responsible_features(clf, X_test[errors], y_test[errors], top=10))
