"""
=====================================================
A training-set attack on digits: change one image only
=====================================================

Koh & Liang (§5.2) showed that perturbing a single training image can flip a test
prediction. :func:`skinfluence.training_set_attack` ranks the training images by
their perturbation influence on a target, takes signed-gradient steps of 0.02 on
the top one within a box of +-0.5 around its original pixels (pixels in [0, 1]),
and refits after every step, until the target flips or 40 steps are done.

On digits 3 vs. 8 with logistic regression we attack the 10 least confident
correctly classified test images one at a time, then all 10 at once through one
training image. You will see the fraction flipped and an original/poisoned pair.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skinfluence import InfluenceLogisticRegression, training_set_attack

digits = load_digits()
mask = np.isin(digits.target, [3, 8])
X, y = digits.data[mask] / 16.0, digits.target[mask]
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X_train, y_train, X_test, y_test = X[:250], y[:250], X[250:], y[250:]
clf = InfluenceLogisticRegression(C=10.0, solver="newton-cholesky", tol=1e-10)
clf.fit(X_train, y_train)
print(f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
proba = clf.predict_proba(X_test)[np.arange(len(y_test)), np.searchsorted(clf.classes_, y_test)]
correct = np.flatnonzero(clf.predict(X_test) == y_test)
targets = correct[np.argsort(proba[correct])][:10]
results = [
    training_set_attack(clf, X_test[t : t + 1], y_test[t : t + 1], step=0.02, box=0.5,
                        max_steps=40, bounds=(0.0, 1.0), schedule=([0],))
    for t in targets
]
flipped = np.mean([r.success for r in results])
print(f"one training image changed: {flipped:.0%} of the {len(targets)} targets flipped")

# %%
together = training_set_attack(clf, X_test[targets], y_test[targets], step=0.02, box=0.5,
                               max_steps=40, bounds=(0.0, 1.0), schedule=([0],))
print(f"one training image against all {len(targets)} at once: "
      f"{together.fraction_flipped:.0%} flipped")

# %%
best = next((r for r in results if r.success), results[0])
i = best.rows[0]
fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
for ax, img, title in ((axes[0], X_train[i], "original"), (axes[1], best.X_poisoned[i], "poisoned")):
    ax.imshow(img.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"{title} training '{y_train[i]}'")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
