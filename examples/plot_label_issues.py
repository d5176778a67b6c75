"""
=================================================================
Finding wrong labels with one fit: confident learning, no refits
=================================================================

Confident learning (the method behind cleanlab) ranks training rows by the
*out-of-sample* probability of their own label, normally from five refits
(``cross_val_predict``). ``skinfluence.find_label_issues`` gets those
probabilities from the fitted model itself (one Newton step per fold). We flip
10% of the breast-cancer labels and compare the fraction of flips found as more
rows are checked: self-influence (the paper), training loss, the one-fit
out-of-sample ranking, and the same ranking from five real refits.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

import skinfluence as sk

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
rng = np.random.default_rng(0)
flips = rng.choice(len(y), len(y) // 10, replace=False)
noisy = y.copy()
noisy[flips] = 1 - noisy[flips]

est = sk.InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10)
model = clone(est).fit(X, noisy)
issues = sk.find_label_issues(model)
print(issues.head())
print(f"{issues['is_issue'].sum()} rows flagged, {np.isin(issues.index[issues['is_issue']], flips).sum()}"
      f" of them truly flipped ({len(flips)} flips in all)")

# %%
refits = cross_val_predict(clone(est), X, noisy, cv=5, method="predict_proba")
orders = {
    "self-influence": np.argsort(model.self_influence()),
    "training loss": np.argsort(-model.loss_values(X, noisy)),
    "out-of-sample, 1 fit (skinfluence)": issues["position"].to_numpy(),
    "out-of-sample, 5 refits": np.argsort(refits[np.arange(len(y)), noisy]),
}
checked = np.linspace(0, 0.3, 31)
fig, ax = plt.subplots(figsize=(5.5, 4))
for name, order in orders.items():
    found = [np.isin(flips, order[: int(round(f * len(y)))]).mean() for f in checked]
    ax.plot(100 * checked, found, label=name)
    print(f"{name:36s} finds {found[10]:.2f} of the flips in the top 10%")
ax.set_xlabel("training rows checked (%)")
ax.set_ylabel("fraction of flipped labels found")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
