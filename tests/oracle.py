"""An independent autograd oracle: the whole objective written plainly.

Nothing here uses skinfluence's code: the risk is written directly in
``autograd.numpy`` over the full parameter vector in ``theta`` order
(``coef_.ravel()``, then ``intercept_``), and autograd differentiates it.
"""

import autograd.numpy as anp
import numpy as np
from autograd import hessian, jacobian


def unpack(theta, K, d, intercept):
    W = anp.reshape(theta[: K * d], (K, d))
    b = theta[K * d :] if intercept else anp.zeros(K)
    return W, b


def per_sample_logistic_loss(theta, X, y_index, K, intercept):
    """Unweighted per-sample loss of (multinomial) logistic regression."""
    d = X.shape[1]
    W, b = unpack(theta, K, d, intercept)
    F = anp.dot(X, W.T) + b
    if K == 1:
        p = 1.0 / (1.0 + anp.exp(-F[:, 0]))
        return -(y_index * anp.log(p) + (1 - y_index) * anp.log(1 - p))
    Z = F - anp.max(F, axis=1, keepdims=True)
    logp = Z - anp.log(anp.sum(anp.exp(Z), axis=1, keepdims=True))
    onehot = np.eye(K)[y_index]
    return -anp.sum(onehot * logp, axis=1)


def risk(theta, X, y_index, s, K, C, intercept, intercept_penalty=0.0):
    """R = (1/n) sum s_i l_i + 1/(2 C n) (||W||^2 + intercept_penalty ||b||^2)."""
    n, d = X.shape
    W, b = unpack(theta, K, d, intercept)
    data = anp.sum(s * per_sample_logistic_loss(theta, X, y_index, K, intercept)) / n
    if np.isinf(C):
        return data
    return data + (anp.sum(W**2) + intercept_penalty * anp.sum(b**2)) / (2 * C * n)


def theta_of(est):
    theta = est.coef_.ravel()
    if est.fit_intercept:
        theta = np.concatenate([theta, np.atleast_1d(est.intercept_)])
    return theta.astype(float)


def oracle_quantities(est, X, y, s, X_test, y_test, C=None, intercept_penalty=0.0):
    """Oracle Hessian, per-sample gradients and influence for a fitted model."""
    classes = est.classes_
    K = 1 if len(classes) == 2 else len(classes)
    yi = np.searchsorted(classes, y)
    yti = np.searchsorted(classes, y_test)
    theta = theta_of(est)
    C = est.C if C is None else C
    H = hessian(risk)(theta, X, yi, s, K, C, est.fit_intercept, intercept_penalty)
    G = jacobian(per_sample_logistic_loss)(theta, X, yi, K, est.fit_intercept)
    Gt = jacobian(per_sample_logistic_loss)(theta, X_test, yti, K, est.fit_intercept)
    Hinv = np.linalg.pinv(H, rcond=1e-10, hermitian=True)
    infl = -Gt @ Hinv @ G.T
    return H, G, Gt, infl


def per_sample_squared_loss(theta, X, Y, K, intercept):
    """Unweighted per-sample least-squares loss ``sum_k (y_k - f_k)^2 / 2``."""
    W, b = unpack(theta, K, X.shape[1], intercept)
    F = anp.dot(X, W.T) + b
    return 0.5 * anp.sum((Y - F) ** 2, axis=1)


def squared_risk(theta, X, Y, s, K, C, intercept):
    n, d = X.shape
    W, _ = unpack(theta, K, d, intercept)
    data = anp.sum(s * per_sample_squared_loss(theta, X, Y, K, intercept)) / n
    return data if np.isinf(C) else data + anp.sum(W**2) / (2 * C * n)


def squared_oracle(est, X, Y, s, X_test, Y_test, C):
    """Oracle influence of a least-squares model on targets ``Y`` (n, K)."""
    K = Y.shape[1]
    theta = np.concatenate([np.ravel(est.coef_), np.atleast_1d(est.intercept_)]) \
        if est.fit_intercept else np.ravel(est.coef_)
    theta = theta.astype(float)
    H = hessian(squared_risk)(theta, X, Y, s, K, C, est.fit_intercept)
    G = jacobian(per_sample_squared_loss)(theta, X, Y, K, est.fit_intercept)
    Gt = jacobian(per_sample_squared_loss)(theta, X_test, Y_test, K, est.fit_intercept)
    return -Gt @ np.linalg.solve(H, G.T)


def signed_targets(y, classes):
    """RidgeClassifier's targets: +1 / -1, one column (two classes) or one per class."""
    Y = np.where(np.asarray(y)[:, None] == np.asarray(classes)[None, :], 1.0, -1.0)
    return Y[:, 1:] if len(classes) == 2 else Y


def unit_deviance(y, mu, power):
    """The Tweedie unit deviance written out per family (not skinfluence's losses)."""
    if power == 0:
        return (y - mu) ** 2
    if power == 1:
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        return 2 * (ylogy - y * anp.log(mu) - y + mu)
    if power == 2:
        return 2 * (anp.log(mu) - np.log(y) + y / mu - 1)
    p = power
    return 2 * (np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
                - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))


def glm_objective(theta, s, X, y, alpha, power, link, intercept):
    """scikit-learn's GLM objective ``sum s_i dev_i / (2 sum s) + alpha/2 ||w||^2``."""
    d = X.shape[1]
    w, b = theta[:d], (theta[d] if intercept else 0.0)
    eta = anp.dot(X, w) + b
    mu = anp.exp(eta) if link == "log" else eta
    return anp.sum(s * unit_deviance(y, mu, power)) / (2 * anp.sum(s)) \
        + alpha / 2 * anp.sum(w ** 2)


def glm_oracle(est, X, y, s, X_test, y_test, power, link):
    """Oracle ``I_up,params`` (n x P) and ``I_up,loss`` (m x n) of a fitted GLM.

    Up-weighting row i is the derivative of the refitted parameters in its
    sample weight, by the implicit function theorem on scikit-learn's own
    objective, scaled to the library's ``R`` (``n d theta / d s_i``).
    """
    from autograd import grad

    intercept = est.fit_intercept
    theta = theta_of(est)
    n = X.shape[0]
    args = (X, y, est.alpha, power, link, intercept)
    H = hessian(glm_objective)(theta, s, *args)
    dgrad_ds = jacobian(grad(glm_objective), 1)(theta, s, *args)  # (P, n)
    params = -n * np.linalg.solve(H, dgrad_ds).T

    def test_loss(th, Xt, yt):
        d = Xt.shape[1]
        eta = anp.dot(Xt, th[:d]) + (th[d] if intercept else 0.0)
        mu = anp.exp(eta) if link == "log" else eta
        return unit_deviance(yt, mu, power) / 2

    Gt = jacobian(test_loss)(theta, X_test, y_test)  # (m, P)
    return params, Gt @ params.T
