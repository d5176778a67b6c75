"""
=====================================================================
How good is the influence approximation? Predicted vs. retrained loss
=====================================================================

Koh & Liang's Figure 2 compares the change of a test loss predicted by the
influence function with the change measured by actually retraining without each
training point. We do the same on scikit-learn's digits (5 classes, multinomial
logistic regression) with :func:`skinfluence.retrain_without`, for the first-order
influence and for the Newton estimate (``kind="newton"``), which takes each
point's own curvature out of the Hessian and evaluates the loss exactly at the
stepped parameters.

You will see two scatter plots near the diagonal, with Pearson R in the titles.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceLogisticRegression, retrain_without
from skinfluence.plotting import plot_retraining

X, y = load_digits(n_class=5, return_X_y=True)
X = StandardScaler().fit_transform(X)
X_train, y_train, X_test, y_test = X[:600], y[:600], X[600:], y[600:]
clf = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X_train, y_train)

# %%
# Retrain without the 30 most influential training points of the test point with
# the highest loss (warm-started refits with the row's weight set to 0).
t = int(np.argmax(clf.loss_values(X_test, y_test)))
result = retrain_without(clf, X_test[t : t + 1], y_test[t : t + 1], top=30)
print(f"first order: R = {result.pearson('remove'):.3f}; Newton: R = {result.pearson('newton'):.4f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
plot_retraining(result, "remove", ax=axes[0])
plot_retraining(result, "newton", ax=axes[1])
fig.tight_layout()
plt.show()
