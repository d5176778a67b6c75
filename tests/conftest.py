import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.preprocessing import StandardScaler


def _standardised(loader, n_train, seed=0, **kwargs):
    X, y = loader(return_X_y=True, **kwargs)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    X = StandardScaler().fit_transform(X)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@pytest.fixture(scope="session")
def cancer():
    """breast_cancer, standardised: 400 training rows, 169 test rows."""
    return _standardised(load_breast_cancer, 400)


@pytest.fixture(scope="session")
def wine():
    """wine (3 classes), standardised: 130 training rows, 48 test rows."""
    return _standardised(load_wine, 130)


@pytest.fixture(scope="session")
def digits5():
    """digits restricted to 5 classes, standardised: 600 training rows."""
    X, y = load_digits(n_class=5, return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    X = StandardScaler().fit_transform(X)
    return X[:600], y[:600], X[600:], y[600:]
