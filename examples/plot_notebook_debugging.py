"""
==========================================================================
Debugging a table in a notebook: a grid search explained through its rows
==========================================================================

A typical tabular workflow: a table of passengers with categorical columns,
missing ages and its own row index; a ``ColumnTransformer`` that imputes,
scales and one-hot encodes; a ``GridSearchCV`` over the regularisation. Every
skinfluence tool takes the fitted *search* itself, with raw rows:

1. why is this test passenger misclassified? -- the training passengers most
   responsible, as a table indexed by their own ids, with named features;
2. which training rows look wrong? -- the self-influence audit;
3. is the answer right? -- retrain without those rows and compare.

The table is generated (no download) with a few labels flipped on purpose, so
we can see whether the audit finds them.
"""

# %%
# A table with strings, missing values and an index
# -------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skinfluence as sk
from skinfluence.plotting import plot_retraining

rng = np.random.default_rng(0)
n = 600
passengers = pd.DataFrame({
    "pclass": rng.choice(["1st", "2nd", "3rd"], n, p=[0.25, 0.25, 0.5]),
    "sex": rng.choice(["female", "male"], n),
    "age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(30, 13, n).clip(1, 80).round()),
    "fare": rng.gamma(2.0, 16.0, n).round(2),
    "embarked": rng.choice(["C", "Q", "S", None], n, p=[0.2, 0.1, 0.65, 0.05]),
}, index=pd.Index([f"P{1000 + i}" for i in range(n)], name="passenger_id"))
logit = (2.2 * (passengers.sex == "female") - 1.2 * (passengers.pclass == "3rd")
         + 0.8 * (passengers.pclass == "1st") - 0.03 * (passengers.age.fillna(30) - 30) - 0.7)
survived = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
                     index=passengers.index, name="survived")
X_train, X_test, y_train, y_test = train_test_split(passengers, survived, test_size=0.25,
                                                    random_state=0, stratify=survived)
# a data-entry slip: 12 training labels recorded the wrong way round
flipped = rng.choice(X_train.index, 12, replace=False)
y_train = y_train.copy()
y_train[flipped] = 1 - y_train[flipped]
print(X_train.head())

# %%
# A pipeline and a grid search, as usual
# --------------------------------------
# ``InfluenceLogisticRegression`` is scikit-learn's ``LogisticRegression`` that
# keeps its training rows; a tight ``tol`` makes the fit an exact optimum, which
# influence functions assume.
preprocessing = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age", "fare"]),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                          OneHotEncoder(handle_unknown="ignore")), ["pclass", "sex", "embarked"]),
])
model = make_pipeline(
    preprocessing, sk.InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-12))
search = GridSearchCV(model, {"influencelogisticregression__C": [0.03, 0.3, 3.0]}, cv=5)
search.fit(X_train, y_train)
print(f"best C = {search.best_params_['influencelogisticregression__C']}, "
      f"test accuracy = {search.score(X_test, y_test):.3f}")

# %%
# 1. Why is this passenger misclassified?
# ---------------------------------------
# The most confidently wrong test passenger, and the training passengers whose
# removal would change its loss most (``change_if_removed`` < 0: harmful).
proba = search.predict_proba(X_test)[np.arange(len(y_test)), y_test.to_numpy()]
worst = X_test.index[np.argmin(proba)]
print(X_test.loc[[worst]], f"\ntrue label {y_test[worst]}, P(true label) = {proba.min():.3f}")
table = sk.top_training_rows(search, X_test.loc[[worst]], y_test.loc[[worst]], k=5,
                             X_train=X_train)
print(table)

# %%
# Which features of those rows drive the loss (named after the encoder's columns):
print(sk.responsible_features(search, X_test.loc[[worst]], y_test.loc[[worst]]).head())

# %%
# The same question row by row, as a labelled table: the paper's influence of
# *perturbing* a training input, one row per (test passenger, training passenger)
# pair and one column per encoded feature. Moving the most harmful passenger's
# inputs along the sign of these numbers would raise this test passenger's loss.
perturbation = sk.explain(search).perturbation_influence(
    X_test.loc[[worst]], y_test.loc[[worst]], as_frame=True)
most_harmful = table.index[0]
print(perturbation.xs(most_harmful, level="passenger_id").round(4))

# %%
# 2. Which training labels look wrong?
# ------------------------------------
# Self-influence ranks the rows the model bends towards most; the 10% checked
# first hold most of the flipped labels.
audit = sk.explain(search).self_influence(as_frame=True).sort_values()
checked = audit.index[: len(audit) // 10]
print(f"checking {len(checked)} rows finds {np.isin(flipped, checked).sum()} of "
      f"{len(flipped)} flipped labels (random checking would find "
      f"{len(flipped) * len(checked) / len(audit):.1f})")
print(sk.top_training_rows(search, k=5, X_train=X_train))

# %%
# 3. Check against retraining
# ---------------------------
# Refit the final step without each of the 20 most influential rows (the
# preprocessing stays as fitted) and compare the test loss change with the
# prediction.
check = sk.retrain_without(search, X_test.loc[[worst]], y_test.loc[[worst]], top=20)
print(check.to_frame().head())
print(f"Pearson R: first order {check.pearson('remove'):.4f}, "
      f"Newton {check.pearson('newton'):.4f}")
plot_retraining(check, kind="newton")
plt.show()
