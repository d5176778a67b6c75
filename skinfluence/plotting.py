"""Figures for influence results (matplotlib is an optional extra)."""

import numpy as np

__all__ = ["plot_retraining", "plot_label_audit", "plot_influence_vs_distance"]


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - optional
        raise ImportError("plotting needs matplotlib: pip install 'skinfluence[examples]'") from exc
    # constrained: a saved figure keeps its axis labels (savefig cut the y label off)
    return plt.subplots(figsize=(4.5, 4.5), layout="constrained")[1]


def plot_retraining(result, kind="remove", ax=None):
    """Predicted vs. actual test-loss change on removal (Koh & Liang, Figure 2).

    Parameters
    ----------
    result : RetrainingResult
        From :func:`skinfluence.validation.retrain_without`.
    kind : str, default="remove"
        Which prediction to plot (``"remove"`` or ``"newton"``).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    predicted = getattr(result, "predicted", None)
    if not isinstance(predicted, dict) or not hasattr(result, "actual"):
        raise TypeError(f"result must be the RetrainingResult of retrain_without(); got a "
                        f"{type(result).__name__}.")
    if kind not in predicted:
        raise ValueError(f"kind={kind!r} was not computed; this result has "
                         f"{sorted(predicted)} (retrain_without(..., kinds=...) sets them).")
    ax = _axes(ax)
    actual = result.actual.ravel()
    pred = predicted[kind].ravel()
    ax.scatter(actual, pred, s=14)
    lim = np.abs(np.r_[actual, pred]).max() * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.locator_params(nbins=5)  # tick labels such as -0.015 ran together
    ax.set_xlabel("actual change in test loss (retrained)")
    label = {"remove": "influence", "newton": "Newton estimate"}.get(kind, kind)
    ax.set_ylabel(f"predicted change ({label})")
    ax.set_title(f"Pearson R = {result.pearson(kind):.3f}")
    return ax


def plot_label_audit(table, metric="flips_found", ax=None):
    """Curves of a label audit (Koh & Liang, Figure 6): one line per ranking.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`skinfluence.applications.label_audit`.
    metric : {"flips_found", "test_accuracy"}, default="flips_found"
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax)
    summary = table.groupby(["ranking", "fraction_checked"])[metric].mean().reset_index()
    for name, part in summary.groupby("ranking"):
        ax.plot(100 * part["fraction_checked"], part[metric], marker="o", ms=3, label=name)
    ax.set_xlabel("training data checked (%)")
    ax.set_ylabel({"flips_found": "fraction of flips found",
                   "test_accuracy": "test accuracy after fixing"}.get(metric, metric))
    ax.legend()
    return ax


def plot_influence_vs_distance(influence, distance, same_label=None, ax=None):
    """Influence of training points against their distance to a test point."""
    influence, distance = np.ravel(influence), np.ravel(distance)
    lengths = {"influence": len(influence), "distance": len(distance)}
    if same_label is not None:
        same_label = np.ravel(same_label)
        lengths["same_label"] = len(same_label)
    if len(set(lengths.values())) > 1:
        raise ValueError(f"One value per training row is needed in each argument; got the "
                         f"lengths {lengths}.")
    ax = _axes(ax)
    if same_label is None:
        ax.scatter(distance, influence, s=10)
    else:
        same_label = same_label.astype(bool)
        ax.scatter(distance[same_label], influence[same_label], s=10, label="same label")
        ax.scatter(distance[~same_label], influence[~same_label], s=10, label="other label")
        ax.legend()
    ax.set_xlabel("distance to the test point")
    ax.set_ylabel("influence")
    return ax
