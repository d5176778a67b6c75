"""The README's Python snippets run as written, in order, in one namespace."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = "<!-- not run by tests/test_readme.py"


def _snippets():
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        before = text[:match.start()].rstrip().splitlines()[-1:]
        if not (before and before[0].startswith(NOT_RUN)):
            blocks.append(match.group(1))
    return blocks


def test_readme_snippets_run():
    pytest.importorskip("pandas")
    blocks = _snippets()
    assert len(blocks) >= 6
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LiSSA and convergence notes are documented
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    # the tables the snippets promise: rows labelled as in X
    assert list(namespace["check"].labels) == list(namespace["table"].index)
    assert namespace["removal"].shape == (10, 400)
