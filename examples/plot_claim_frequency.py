"""
=======================================================================
Which policies drive a high predicted claim frequency?
=======================================================================

A Poisson GLM of motor-insurance claim frequency, fitted the way actuaries fit
it in scikit-learn: claims per year as the target, the years of exposure as
sample weights (as in scikit-learn's "Poisson regression and non-normal loss"
example). The table is generated here -- regions, vehicle and driver ages, a
bonus-malus level, policy ids as the index -- with a data-entry error planted in
four policies: their exposure was typed in days instead of years, so each
weighs 365 times too much and reports a frequency 365 times too low.

You will see:

1. which training policies raise the predicted frequency of the riskiest new
   policy most (``influence_on_prediction`` with ``kind="newton"``), checked
   against refits without each of them;
2. Cook's distance (``cooks_distance``) pointing at the planted errors, and
   how much the prediction moves when they are fixed.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

import skinfluence as sk

rng = np.random.default_rng(0)
n = 2_000
policies = pd.DataFrame({
    "region": rng.choice(["rural", "suburb", "city"], n, p=[0.3, 0.4, 0.3]),
    "vehicle_age": rng.integers(0, 20, n),
    "driver_age": rng.integers(18, 85, n),
    "bonus_malus": rng.choice([50, 60, 80, 100, 120], n, p=[0.5, 0.2, 0.15, 0.1, 0.05]),
}, index=pd.Index([f"POL{i:05d}" for i in range(n)], name="policy"))
log_rate = (-2.3 + 0.5 * (policies["region"] == "city") + 0.012 * (policies["bonus_malus"] - 50)
            + 0.6 * (policies["driver_age"] < 25) - 0.02 * policies["vehicle_age"])
exposure = pd.Series(rng.uniform(0.1, 1.0, n), index=policies.index, name="exposure")
claims = rng.poisson(np.exp(log_rate) * exposure)
errors = policies.index[rng.choice(n, 4, replace=False)]  # exposure typed in days
exposure[errors] = exposure[errors] * 365
frequency = pd.Series(claims / exposure, index=policies.index, name="frequency")

features = ColumnTransformer([
    ("region", OneHotEncoder(), ["region"]),
    ("ages", SplineTransformer(n_knots=4, degree=2), ["vehicle_age", "driver_age"]),
    ("bm", StandardScaler(), ["bonus_malus"]),
])
glm = sk.InfluencePoissonRegressor(alpha=1e-3, solver="newton-cholesky", tol=1e-10)
model = make_pipeline(features, glm)
model.fit(policies, frequency, influencepoissonregressor__sample_weight=exposure)
ex = sk.explain(model)
print(f"{n} policies, {ex.n_train_} rows seen by the GLM, {len(ex.parameter_names())} "
      "parameters")

# %%
# 1. The riskiest new policy, and the policies behind its prediction
# ------------------------------------------------------------------
new = pd.DataFrame({"region": ["city"], "vehicle_age": [1], "driver_age": [19],
                    "bonus_malus": [120]}, index=pd.Index(["NEW"], name="policy"))
base = model.predict(new)[0]
change = ex.influence_on_prediction(new, kind="newton", as_frame=True).loc["NEW"]
print(f"\npredicted frequency of the new policy: {base:.3f} claims per year")
print("removing these training policies would change it most:")
top = change.abs().sort_values(ascending=False).index[:8]
print(pd.concat([change[top].rename("change"), policies.loc[top],
                 exposure[top], frequency[top]], axis=1).round(3).to_string())

# checked against refits without each of the 12 largest
rows = change.abs().sort_values(ascending=False).index[:12]
actual = []
for label in rows:
    keep = policies.index != label
    refit = clone(model).fit(policies[keep], frequency[keep],
                             influencepoissonregressor__sample_weight=exposure[keep])
    actual.append(refit.predict(new)[0] - base)
r = np.corrcoef(actual, change[rows])[0, 1]
print(f"\nPearson R, predicted vs refitted change over those 12 policies: {r:.4f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
ax1.scatter(actual, change[rows], s=14)
lim = 1.1 * np.abs(np.r_[actual, change[rows]]).max()
ax1.plot([-lim, lim], [-lim, lim], color="grey", lw=1)
ax1.set_xlabel("actual change of the prediction (refitted)")
ax1.set_ylabel("predicted (Newton step)")
ax1.set_title(f"Pearson R = {r:.4f}")

# %%
# 2. Cook's distance finds the exposure errors
# --------------------------------------------
cooks = ex.cooks_distance(as_frame=True).sort_values(ascending=False)
print("\nlargest Cook's distances:")
print(pd.concat([cooks.head(6), exposure, frequency], axis=1, join="inner").round(4)
      .to_string())
found = set(cooks.index[:10]) & set(errors)
print(f"{len(found)} of the {len(errors)} planted exposure errors are among the 10 largest")

fixed = exposure.copy()
fixed[errors] = fixed[errors] / 365
refit = clone(model).fit(policies, claims / fixed,
                         influencepoissonregressor__sample_weight=fixed)
print(f"prediction for the new policy: {base:.3f} with the errors, "
      f"{refit.predict(new)[0]:.3f} after fixing them")

ax2.scatter(np.arange(n), ex.cooks_distance(), s=4)
ax2.scatter([policies.index.get_loc(e) for e in errors], cooks[errors], color="red", s=16,
            label="exposure typed in days")
ax2.set_yscale("log")
ax2.set_xlabel("policy")
ax2.set_ylabel("Cook's distance")
ax2.legend()
fig.tight_layout()
plt.show()
