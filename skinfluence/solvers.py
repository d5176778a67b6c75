"""Inverse-Hessian solvers.

A solver knows only the Hessian (here as a dense symmetric matrix); it knows
nothing of losses, features or estimators. It offers ``solve(B) = H^{-1} B`` and,
where it can, ``half_solve(B) = L^{-1} B`` with ``H = L L^T``, so that quadratic
forms ``b^T H^{-1} b`` are squared column norms (used by ``self_influence``).
"""

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from scipy.linalg.lapack import dpocon

from .exceptions import SingularHessianError

__all__ = ["DirectSolver"]

# Reciprocal condition number below which the Hessian is treated as singular.
RCOND_SINGULAR = 1e3 * np.finfo(np.float64).eps


class DirectSolver:
    """Cholesky factorisation of the Hessian.

    Parameters
    ----------
    H : ndarray of shape (P, P)
        Symmetric positive definite matrix.

    Raises
    ------
    SingularHessianError
        When ``H`` is not numerically positive definite (its reciprocal
        condition number is below ``1e3 * eps``).
    """

    name = "direct"

    def __init__(self, H):
        H = np.asarray(H, dtype=np.float64)
        anorm = np.abs(H).sum(axis=0).max() if H.size else 0.0
        try:
            self._c, self._lower = cho_factor(H, lower=True, check_finite=True)
        except LinAlgError as exc:
            raise SingularHessianError(
                "The Hessian is not positive definite, so influence is not defined: "
                "the optimum is not unique along some direction (for example "
                "separable data with no penalty, C=np.inf, duplicated features, or "
                "a smooth hinge with a small t whose classes are separated so that no "
                "sample is near the margin). Set `damping` to a small positive value "
                "(e.g. 1e-3) to regularise H, use a finite C, or a larger t."
            ) from exc
        rcond, info = dpocon(self._c, anorm, uplo="L")
        self.rcond = float(rcond)
        if info != 0 or not np.isfinite(rcond) or rcond < RCOND_SINGULAR:
            raise SingularHessianError(
                f"The Hessian is numerically singular (reciprocal condition number "
                f"{rcond:.1e}): influence would be dominated by rounding error. Set "
                "`damping` to a small positive value (e.g. 1e-3) to regularise H, "
                "use a finite C, or (smooth hinge) a larger t."
            )

    def solve(self, B):
        """``H^{-1} B`` for a vector or a matrix of right-hand sides."""
        return cho_solve((self._c, self._lower), B, check_finite=False)

    def half_solve(self, B):
        """``L^{-1} B`` where ``H = L L^T``."""
        return solve_triangular(self._c, B, lower=True, check_finite=False)

    def quad_augmented(self, Phi, intercept):
        """``[phi_i, 1]^T H^{-1} [phi_i, 1]`` for every row ``phi_i`` of ``Phi``.

        Splits ``L = [[L11, 0], [l21^T, l22]]`` so that the rows never need to be
        copied into an augmented matrix: ``L^{-1} [phi; 1] = [v; (1 - l21^T v) /
        l22]`` with ``v = L11^{-1} phi``. Without ``intercept`` it is
        ``||L^{-1} phi||^2``.
        """
        d = Phi.shape[1]
        V = solve_triangular(self._c[:d, :d], Phi.T, lower=True, check_finite=False)
        quad = np.einsum("pc,pc->c", V, V)
        if intercept:
            last = (1.0 - self._c[d, :d] @ V) / self._c[d, d]
            quad += last**2
        return quad
