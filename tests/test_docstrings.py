"""The Examples sections of the public docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import skinfluence

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(skinfluence.__path__, "skinfluence.")
    if name not in ("skinfluence.__main__",)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    pytest.importorskip("pandas")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
