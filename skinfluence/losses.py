"""Per-sample losses written once, as functions of the model outputs.

A loss knows nothing of parameters, features or solvers. It maps encoded targets
``Y`` and model outputs ``F`` of shape ``(n_samples, n_outputs)`` to the per-sample
loss values of shape ``(n_samples,)``, in :mod:`autograd.numpy`, so that
:mod:`skinfluence.curvature` can differentiate it exactly with respect to ``F``.

Each loss also says how class labels are encoded for it (:meth:`Loss.encode`) and
whether it is unchanged when the same constant is added to every output
(``shift_invariant``): the softmax is, which makes the Hessian singular along that
direction (see ``DESIGN.md`` §2).
"""

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp
from scipy.special import expit, softmax

#: Largest linear predictor of a log link whose mean (and its square) fits float64.
MAX_LOG_MEAN = 350.0

__all__ = [
    "Loss", "LogLoss", "OneVsRestLogLoss", "SoftmaxLoss", "SmoothHinge", "SquaredLoss",
    "SignedSquaredLoss", "HalfTweedieDeviance", "HalfPoissonDeviance", "HalfGammaDeviance",
]


def _softplus(x):
    """``log(1 + exp(x))`` in place of a new array, in vectorised passes (numpy's
    ``logaddexp`` was 4x slower on a million values)."""
    out = np.abs(x)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(x, 0.0)
    return out


def _logsumexp_first(Z):
    """``logsumexp`` over the first axis as ``top + log1p(rest)``, ``rest`` the sum
    of ``exp(Z - top)`` without one term of 1 (ties counted), so that values near 0
    keep their relative precision. Overwrites ``Z``."""
    top = Z.max(axis=0)
    Z -= top
    at_top = Z == 0.0
    ties = at_top.sum(axis=0, dtype=np.float64)
    ties -= 1.0
    np.exp(Z, out=Z)
    Z -= at_top  # the top terms are exp(0) = 1 exactly: now 0 (a masked write was 1.5x)
    rest = Z.sum(axis=0)
    rest += ties
    out = np.log1p(rest)
    out += top
    return out


def _one_hot_labels(Y):
    """The class of each row of a one-hot ``Y``, else None."""
    labels = np.argmax(Y, axis=1)
    return labels if np.array_equal(Y, np.eye(Y.shape[1])[labels]) else None


def _log1p_others(dF, F0, labels):
    """``log(sum_k exp(F[k] - F[y]))`` for ``F = F0 + dF`` (outputs first), as ``log1p``
    of the other classes' ``exp`` (the true class's term is the 1): three passes over
    ``dF``'s size where shifting by the maximum took seven (W1: 100 test rows x 1,400
    steps x 10 classes, 1.79x), as precise where a row is confidently right. None
    when an ``exp`` overflowed (an output 709 above the true one's)."""
    m = F0.shape[0]
    rows = np.arange(m)
    F = dF - dF[labels, rows, :][None]
    F += (F0 - F0[rows, labels][:, None]).T[:, :, None]
    F[labels, rows, :] = -np.inf  # exp(0) = 1 exactly: it is the "1 +" of log1p
    with np.errstate(over="ignore"):
        np.exp(F, out=F)
    out = F.sum(axis=0)
    if not np.isfinite(out).all():
        return None
    return np.log1p(out, out=out)


def _diagonal(V):
    """``(n, K)`` -> ``(n, K, K)`` with ``V`` on each diagonal."""
    A = np.zeros(V.shape + (V.shape[1],))
    A[:, np.arange(V.shape[1]), np.arange(V.shape[1])] = V
    return A


class Loss:
    """Base class of per-sample losses ``l(y, f)``.

    Subclasses implement :meth:`value` in :mod:`autograd.numpy` and
    :meth:`n_outputs`; classification losses also implement :meth:`encode`.
    """

    #: True when ``value(Y, F + c) == value(Y, F)`` for any constant ``c``
    #: added to every output of a sample.
    shift_invariant = False
    #: The outputs map to class probabilities (``predict_proba``) differentiably.
    probabilities = False

    #: True for families whose dispersion is estimated (normal, gamma, Tweedie):
    #: Cook's distance then divides by Pearson's estimate; else by 1.
    estimate_dispersion = False

    def check_outputs(self, F):
        """Refuse outputs at which the loss is undefined (default: all finite are fine)."""

    def check_targets(self, Y, what="y", training=False):
        """Refuse regression targets outside the family's domain (default: all reals);
        ``training`` targets must also admit a finite optimum."""

    def n_outputs(self, n_classes):
        """Number of model outputs ``K`` for ``n_classes`` classes."""
        raise NotImplementedError

    def encode(self, y_index, n_classes):
        """Encode class indices ``0..n_classes-1`` into the target array ``Y``."""
        raise NotImplementedError

    def value(self, Y, F):
        """Per-sample loss values, shape ``(n_samples,)``."""
        raise NotImplementedError

    def separated(self, Y, F):
        """Whether the outputs ``F`` classify every row strictly right, so that the
        loss falls towards 0 along ``t F`` as ``t`` grows: without a penalty the
        objective then has no finite minimiser. False for losses without that limit."""
        return False

    def absent_classes(self, Y):
        """Indices of the classes no row of ``Y`` belongs to: with an unpenalised
        intercept the loss keeps falling as such a class's output moves away, so the
        objective has no finite minimiser. Empty for losses without classes."""
        return []

    def value_change(self, Y, F0, dF):
        """``value(Y_t, F0_t + dF[:, t, j]) - value(Y_t, F0_t)`` for every test row
        ``t`` and step ``j``: shape ``(m, c)``.

        ``Y`` and ``F0`` have shape ``(m, K)``; ``dF`` has shape ``(K, m, c)``
        (outputs first, so that each output is one contiguous ``(m, c)`` block).
        """
        K, m, c = dF.shape
        F = (F0.T[:, :, None] + dF).transpose(1, 2, 0).reshape(m * c, K)
        after = np.asarray(self.value(np.repeat(Y, c, axis=0), F)).reshape(m, c)
        return after - np.asarray(self.value(Y, F0))[:, None]

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class LogLoss(Loss):
    """Binary logistic loss ``log(1 + exp(f)) - y f`` with ``y`` in {0, 1}.

    The model has one output ``f``, the log-odds of the positive class
    (``classes_[1]`` in scikit-learn).
    """

    probabilities = True

    def n_outputs(self, n_classes):
        return 1

    def encode(self, y_index, n_classes):
        return np.asarray(y_index, dtype=np.float64)

    def value(self, Y, F):
        f = F[:, 0]
        return anp.logaddexp(0.0, f) - Y * f

    def separated(self, Y, F):
        return bool(len(F) and np.all((2.0 * np.ravel(Y) - 1.0) * F[:, 0] > 0))

    def absent_classes(self, Y):
        y = np.ravel(Y)
        return [c for c, present in enumerate((np.any(y == 0), np.any(y == 1))) if not present]

    def value_change(self, Y, F0, dF):
        # log(1 + e^f) - y f = y softplus(-f) + (1 - y) softplus(f): differences of
        # accurate softplus values, so that a confidently right row's tiny change is
        # not lost to cancellation against f; with labels in {0, 1}, one softplus
        # of (1 - 2y) f per entry
        y, f0, d = np.asarray(Y, dtype=float)[:, None], F0[:, :1], dF[0]
        if np.all((y == 0) | (y == 1)):
            sign = 1.0 - 2.0 * y
            out = _softplus(sign * (f0 + d))
            out -= _softplus(sign * f0)
            return out
        f1 = f0 + d
        out = _softplus(f1)
        out -= _softplus(f0)
        out *= 1.0 - y
        neg = _softplus(-f1)
        neg -= _softplus(-f0)
        out += y * neg
        return out

    def derivatives(self, Y, F, order=2):
        p = expit(F)
        G = p - np.reshape(Y, (-1, 1))
        return G if order == 1 else (G, (p * (1.0 - p))[:, :, None])


class OneVsRestLogLoss(Loss):
    """Sum over classes of binary logistic losses (one-vs-rest, as SGDClassifier).

    Two classes use one output (exactly :class:`LogLoss`); more use one output per
    class with targets in {0, 1}, and probabilities are the classes' sigmoids
    normalised to sum to 1, as scikit-learn's ``predict_proba``.
    """

    probabilities = True

    def n_outputs(self, n_classes):
        return 1 if n_classes == 2 else n_classes

    def encode(self, y_index, n_classes):
        y_index = np.asarray(y_index)
        if n_classes == 2:
            return y_index.astype(np.float64)[:, None]
        Y = np.zeros((len(y_index), n_classes))
        Y[np.arange(len(y_index)), y_index] = 1.0
        return Y

    def value(self, Y, F):
        return anp.sum(anp.logaddexp(0.0, F) - Y * F, axis=1)

    def separated(self, Y, F):
        # one binary problem per output: any separated one runs off on its own
        return bool(len(F) and np.any(np.all((2.0 * Y - 1.0) * F > 0, axis=0)))

    def absent_classes(self, Y):
        if Y.shape[1] == 1:
            return LogLoss.absent_classes(self, Y)
        return list(np.flatnonzero(~np.any(Y == 1, axis=0)))

    def derivatives(self, Y, F, order=2):
        p = expit(F)
        G = p - Y
        return G if order == 1 else (G, _diagonal(p * (1.0 - p)))


class SoftmaxLoss(Loss):
    """Multinomial cross-entropy ``logsumexp(f) - f_y`` over ``K`` outputs.

    Adding one constant to every output leaves it unchanged
    (``shift_invariant = True``).
    """

    shift_invariant = True
    probabilities = True

    def n_outputs(self, n_classes):
        return n_classes

    def encode(self, y_index, n_classes):
        Y = np.zeros((len(y_index), n_classes))
        Y[np.arange(len(y_index)), y_index] = 1.0
        return Y

    def value(self, Y, F):
        return logsumexp(F, axis=1) - anp.sum(Y * F, axis=1)

    def separated(self, Y, F):
        if not len(F):
            return False
        true = np.sum(Y * F, axis=1)
        other = np.where(Y > 0, -np.inf, F).max(axis=1)
        return bool(np.all(true > other))

    def absent_classes(self, Y):
        return list(np.flatnonzero(~np.any(Y > 0, axis=0)))

    def value_change(self, Y, F0, dF):
        # the loss is logsumexp(F - Y.F) (Y sums to 1); each value as
        # top + log1p(sum of the other exps), accurate when a row is confidently right
        # (the change is then far below the outputs' rounding). Every reduction runs
        # over the K contiguous (m, c) blocks (over a last axis of 10 was 5x slower).
        labels = _one_hot_labels(Y)
        out = None if labels is None else _log1p_others(dF, F0, labels)
        if out is None:  # not one-hot, or an exp overflowed: shift by the maximum
            F = dF + F0.T[:, :, None]
            F -= np.einsum("kmc,mk->mc", F, Y)
            out = _logsumexp_first(F)
        before = F0 - np.einsum("mk,mk->m", F0, Y)[:, None]
        out -= _logsumexp_first(before.T[:, :, None])
        return out

    def derivatives(self, Y, F, order=2):
        P = softmax(F, axis=1)
        G = P - Y
        if order == 1:
            return G
        A = -P[:, :, None] * P[:, None, :]
        A[:, np.arange(P.shape[1]), np.arange(P.shape[1])] += P
        return G, A


class SmoothHinge(Loss):
    """Smoothed hinge ``t log(1 + exp((1 - y f) / t))`` summed over outputs.

    ``y`` is in {-1, +1}; the loss tends to the hinge ``max(0, 1 - y f)`` as
    ``t -> 0`` (Koh & Liang 2017, §4.1). With ``K > 2`` classes the outputs are
    one-vs-rest problems and the loss is the sum of their binary losses, so the
    Hessian is block-diagonal across classes.

    Parameters
    ----------
    t : float
        Temperature, > 0.
    """

    def __init__(self, t=0.1):
        self.t = float(t)

    def n_outputs(self, n_classes):
        return 1 if n_classes == 2 else n_classes

    def encode(self, y_index, n_classes):
        y_index = np.asarray(y_index)
        if n_classes == 2:
            return np.where(y_index == 1, 1.0, -1.0)[:, None]
        Y = -np.ones((len(y_index), n_classes))
        Y[np.arange(len(y_index)), y_index] = 1.0
        return Y

    def value(self, Y, F):
        t = self.t
        return anp.sum(t * anp.logaddexp(0.0, (1.0 - Y * F) / t), axis=1)

    def absent_classes(self, Y):
        # the smoothed hinge never goes flat: like the log loss, it keeps falling
        if Y.shape[1] == 1:
            y = np.ravel(Y)
            return [c for c, present in enumerate((np.any(y < 0), np.any(y > 0)))
                    if not present]
        return list(np.flatnonzero(~np.any(Y > 0, axis=0)))

    def value_change(self, Y, F0, dF):
        t, out = self.t, 0.0
        for k in range(dF.shape[0]):  # a loop over outputs
            margin = (1.0 - Y[:, k:k + 1] * (F0[:, k:k + 1] + dF[k])) / t
            out = out + _softplus(margin) - _softplus((1.0 - Y[:, k:k + 1] * F0[:, k:k + 1]) / t)
        return t * out

    def derivatives(self, Y, F, order=2):
        q = expit((1.0 - Y * F) / self.t)
        G = -Y * q
        return G if order == 1 else (G, _diagonal(Y * Y * q * (1.0 - q) / self.t))


class SquaredLoss(Loss):
    """Squared error ``(y - f)**2 / 2`` summed over outputs."""

    estimate_dispersion = True

    def n_outputs(self, n_classes):
        return n_classes

    def encode(self, y, n_outputs):
        Y = np.asarray(y, dtype=np.float64)
        return Y.reshape(len(Y), -1)

    def value(self, Y, F):
        return 0.5 * anp.sum((Y - F) ** 2, axis=1)

    def derivatives(self, Y, F, order=2):
        G = F - Y
        return G if order == 1 else (G, _diagonal(np.ones_like(F)))

    def inverse_link(self, F):
        """The predicted mean from the outputs (``predict``): here the outputs."""
        return F

    def variance(self, mu):
        """The variance function ``V(mu)`` of the family (Pearson residuals)."""
        return anp.ones_like(mu)



class SignedSquaredLoss(SquaredLoss):
    """Least squares on class targets in {-1, +1}, as ``RidgeClassifier`` fits.

    Two classes use one output (``+1`` for ``classes_[1]``); more use one
    output per class (``+1`` for the row's class, ``-1`` elsewhere).
    """

    def n_outputs(self, n_classes):
        return 1 if n_classes == 2 else n_classes

    def encode(self, y_index, n_classes):
        return SmoothHinge.encode(self, y_index, n_classes)


class HalfTweedieDeviance(Loss):
    """Half the Tweedie deviance of a mean ``mu = link^-1(f)``, one output.

    ``l(y, f) = max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p)``
    for power ``p`` outside {0, 1, 2}, with the limits ``(y - mu)^2 / 2`` (p = 0,
    normal), ``y log(y / mu) - y + mu`` (p = 1, Poisson) and ``log(mu / y) + y / mu - 1``
    (p = 2, gamma). This is scikit-learn's ``HalfTweedieLoss`` *with* its constant
    (``constant_to_optimal_zero``), so ``l >= 0`` with equality at ``mu = y``: the
    constant does not change any derivative, but makes the loss at a test row read as
    half its deviance (``mean_tweedie_deviance / 2``). ``F`` is the linear predictor.

    Parameters
    ----------
    power : float
        Tweedie power ``p`` (<= 0 or >= 1).
    link : {"log", "identity"}
        ``mu = exp(f)`` or ``mu = f`` (the identity needs ``mu > 0`` when p > 0).
    """

    def __init__(self, power=0.0, link="log"):
        self.power = float(power)
        self.link = link
        self.estimate_dispersion = self.power != 1.0  # Poisson's is 1

    def n_outputs(self, n_classes):
        return 1

    def encode(self, y, n_outputs):
        return SquaredLoss.encode(self, y, n_outputs)

    def inverse_link(self, F):
        return anp.exp(F) if self.link == "log" else F

    def variance(self, mu):
        return mu ** self.power

    def check_targets(self, Y, what="y", training=False):
        p = self.power
        bad = None
        if p > 0 and np.any(Y < 0):
            domain, bad = ("y >= 0", Y < 0) if p < 2 else ("y > 0", Y <= 0)
        elif p >= 2 and np.any(Y <= 0):
            domain, bad = "y > 0", Y <= 0
        if bad is not None:
            raise ValueError(
                f"{what} has {int(np.count_nonzero(bad))} value(s) outside the "
                f"{self._family()} family's domain ({domain}), e.g. "
                f"{float(Y[bad].flat[0])!r}; pass targets in the domain (or choose another "
                "model)."
            )
        if training and self.link == "log" and Y.size and not np.any(Y > 0):
            # the mean runs to 0: no finite optimum, and the fit's Hessian is (nearly) zero
            raise ValueError(
                f"{what} is zero on every row: a {self._family()} model with a log link has "
                "no finite optimum (its mean runs to 0), so influence is undefined. Check the "
                "target column; a model needs some positive values."
            )

    def check_outputs(self, F):
        """The mean must be in the family's domain: ``exp(f)`` must not overflow, and
        an identity link needs ``f > 0`` when ``power > 0``."""
        f = np.asarray(F)[:, 0]
        if self.link == "log" and f.size and f.max() > MAX_LOG_MEAN:
            i = int(np.argmax(f))
            raise ValueError(
                f"The model's linear predictor is {f[i]:.3g} at row {i}: its mean exp(f) "
                "overflows float64. The row's features lie far outside the training data; "
                "rescale or fix them."
            )
        if self.link == "identity" and self.power > 0 and np.any(f <= 0):
            i = int(np.flatnonzero(f <= 0)[0])
            raise ValueError(
                f"The predicted mean is {f[i]:.3g} <= 0 at {int(np.count_nonzero(f <= 0))} "
                f"row(s) (first: row {i}), outside the {self._family()} family's domain "
                "(mean > 0): the loss and its influence are undefined there. Fit with "
                "link='log' to keep every mean positive."
            )

    def _family(self):
        p = self.power
        return {0.0: "normal", 1.0: "Poisson", 2.0: "gamma"}.get(p, f"Tweedie(power={p:g})")

    def _constant(self, y):
        """The ``y``-only terms (numpy: they have no derivative in F)."""
        p = self.power
        if p == 0:
            return np.zeros_like(y)
        if p == 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y
        if p == 2:
            return -np.log(y) - 1.0
        return np.maximum(y, 0.0) ** (2 - p) / ((1 - p) * (2 - p))

    def value(self, Y, F):
        y, f = Y[:, 0], F[:, 0]
        p = self.power
        log = self.link == "log"
        if p == 0:
            mu = self.inverse_link(f)
            return 0.5 * (y - mu) ** 2
        if p == 1:
            mu = self.inverse_link(f)
            logmu = f if log else anp.log(mu)
            return mu - y * logmu + self._constant(y)
        if p == 2:
            inv_mu = anp.exp(-f) if log else 1.0 / f
            logmu = f if log else anp.log(f)
            return logmu + y * inv_mu + self._constant(y)
        if log:  # mu^q = exp(q f), without forming mu
            return (-y * anp.exp((1 - p) * f) / (1 - p) + anp.exp((2 - p) * f) / (2 - p)
                    + self._constant(y))
        return -y * f ** (1 - p) / (1 - p) + f ** (2 - p) / (2 - p) + self._constant(y)


class HalfPoissonDeviance(HalfTweedieDeviance):
    """Half the Poisson deviance ``y log(y / mu) - y + mu``, ``mu = exp(f)``."""

    def __init__(self):
        super().__init__(power=1.0, link="log")

    def __repr__(self):
        return "HalfPoissonDeviance()"


class HalfGammaDeviance(HalfTweedieDeviance):
    """Half the gamma deviance ``log(mu / y) + y / mu - 1``, ``mu = exp(f)``."""

    def __init__(self):
        super().__init__(power=2.0, link="log")

    def __repr__(self):
        return "HalfGammaDeviance()"
