"""Find label issues from out-of-sample probabilities computed from one fit.

Confident learning (Northcutt, Jiang & Chuang, JAIR 2021, the method behind
cleanlab) needs out-of-sample predicted probabilities, usually from K refits
(``cross_val_predict``). Here they come from the fitted model itself:
:meth:`~skinfluence.InfluenceMixin.approx_cross_val_predict` (Newton steps per
fold on scikit-learn's folds) or :meth:`~skinfluence.InfluenceMixin.loo_predict_proba`
(one Newton step per row) -- one fit plus factorisations instead of K fits.
"""

import numpy as np

from ._frames import take_index
from .predictions import predicted_labels
from .explain import as_explanation
from ._utils import warns_once_per_call

__all__ = ["find_label_issues", "confident_learning_issues"]


def confident_learning_issues(labels, pred_probs):
    """Rows whose confidently predicted class differs from their label.

    The off-diagonal of confident learning's *confident joint*, as cleanlab's
    ``find_label_issues(filter_by="confident_learning")`` computes it: with
    per-class thresholds ``t_k`` = the mean predicted probability of class ``k``
    over the rows labelled ``k``, a row is confident in the classes whose
    probability reaches their threshold (to 1e-6); its guessed class is that
    class, or its most probable class when it is confident in several; the row is
    an issue when the guess is not its label -- unless its label is its most
    probable class (to 1e-6), cleanlab's last step.

    Parameters
    ----------
    labels : ndarray of int of shape (n,)
        Class indices ``0 .. K-1``.
    pred_probs : ndarray of shape (n, K)
        Out-of-sample predicted probabilities.

    Returns
    -------
    ndarray of bool of shape (n,)
        False for rows with NaN probabilities (no out-of-sample answer), which
        take no part in the thresholds either.
    """
    labels = np.asarray(labels)
    P = np.asarray(pred_probs, dtype=float)
    n, K = P.shape
    known = np.isfinite(P).all(axis=1)  # rows without an answer (NaN) are no issue
    thresholds = np.array([P[known & (labels == k), k].mean()
                           if np.any(known & (labels == k)) else np.inf for k in range(K)])
    Pk = np.where(known[:, None], P, 0.0)
    above = (Pk >= thresholds[None, :] - CL_FUZZ) & known[:, None]
    count = above.sum(axis=1)
    guess = np.where(count > 1, np.argmax(Pk, axis=1), np.argmax(above, axis=1))
    bumped = Pk.copy()
    bumped[np.arange(n), labels] += CL_FUZZ
    label_is_predicted = np.argmax(bumped, axis=1) == labels
    return (count > 0) & (guess != labels) & ~label_is_predicted


#: cleanlab's tolerance in its threshold and prediction comparisons.
CL_FUZZ = 1e-6


@warns_once_per_call
def find_label_issues(fitted, *, method="cv", cv=None, groups=None, newton_steps="auto"):
    """Training rows ranked most-suspicious first, with confident learning's issue set.

    Parameters
    ----------
    fitted : fitted skinfluence classifier, Pipeline, search or Explanation
        Anything :func:`skinfluence.explain` accepts (a classifier with
        probabilities: logistic regression).
    method : {"cv", "loo"}, default="cv"
        Out-of-sample probabilities from approximate K-fold cross-validation
        (``cv`` as in ``cross_val_predict``: 5 stratified folds by default,
        ``newton_steps`` per fold) or approximate leave-one-out.
    cv, groups, newton_steps : see :meth:`InfluenceMixin.approx_cross_val_predict`
        ``"auto"`` (the default) steps until each fold's objective is at its
        optimum, so the probabilities are the refits' (breast_cancer at C=1:
        1.3e-13) and the ranking the one five refits give. A fixed count is
        cheaper and can be far off for weakly penalised models (C=100: 0.79
        after two steps, 5.7e-2 after four); it warns when the next step would
        still move the outputs by more than 0.05.

    Returns
    -------
    pandas.DataFrame
        One row per training row, most suspicious first (lowest
        ``self_confidence``, the out-of-sample probability of its own label),
        indexed by the training rows' labels, with columns ``label``,
        ``self_confidence``, ``suggested_label`` (the most probable class out of
        sample), ``is_issue`` (confident learning's off-diagonal) and
        ``position`` (fit order). Rows without an out-of-sample answer (NaN
        probabilities: no unique refit without them, with a RuntimeWarning that
        names them) come last, with no suggested label (None, or pandas' missing
        value where the labels are strings).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceLogisticRegression, find_label_issues
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> y.iloc[:5] = 1 - y.iloc[:5]  # five wrong labels
    >>> pipe = make_pipeline(StandardScaler(),
    ...                      InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10))
    >>> issues = find_label_issues(pipe.fit(X, y))
    >>> sorted(issues.index[:5].tolist())
    [0, 1, 2, 3, 4]
    """
    import pandas as pd

    ex = as_explanation(fitted)
    classes = getattr(ex, "classes_", None)
    if classes is None:
        raise ValueError("find_label_issues needs a classifier; this model is a regressor.")
    model = ex.model_
    if not model._fitted_model().loss.probabilities:
        raise ValueError(
            f"find_label_issues ranks rows by their out-of-sample class probabilities "
            f"(confident learning); {model._user_name} "
            "gives none it can differentiate. Use a logistic model, or rank rows by "
            "self_influence()."
        )
    if method == "cv":
        P = model.approx_cross_val_predict("predict_proba", cv, groups=groups,
                                           newton_steps=newton_steps)
    elif method == "loo":
        P = model.loo_predict_proba()
    else:
        raise ValueError(f"method must be 'cv' or 'loo'; got {method!r}.")
    y = np.asarray(ex.y_train_)
    idx = np.searchsorted(classes, y)
    own = P[np.arange(len(y)), idx]
    issues = confident_learning_issues(idx, P)
    order = np.argsort(own, kind="stable")
    frame = pd.DataFrame({
        "label": y[order],
        "self_confidence": own[order],
        "suggested_label": predicted_labels(classes, P[order]),
        "is_issue": issues[order],
        "position": order,
    }, index=take_index(ex.train_index_, order))
    return frame
