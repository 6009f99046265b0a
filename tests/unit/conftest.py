"""Shared set-up for the unit tests.

The filter plugins are plain modules: putting plugins/filter on sys.path lets
the tests import them by file name (`import dagster_workspace`) and run with
`pytest tests/unit` from the repository root, without an installed collection.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO_ROOT = Path(__file__).resolve().parents[2]
FILTER_DIR = REPO_ROOT / "plugins" / "filter"

if str(FILTER_DIR) not in sys.path:
    sys.path.insert(0, str(FILTER_DIR))


def _filter_error(func, *args, **kwargs):
    with pytest.raises(AnsibleFilterError) as excinfo:
        func(*args, **kwargs)
    return str(excinfo.value)


def _assert_field(message, field):
    assert re.match(re.escape(field) + ":", message), f"expected a message about {field!r}, got {message!r}"


@pytest.fixture
def filter_error():
    """filter_error(func, *args, **kwargs): call func expecting AnsibleFilterError; return its message."""
    return _filter_error


@pytest.fixture
def assert_field():
    """assert_field(message, field): the plugins' messages read `FIELD: problem`; check FIELD."""
    return _assert_field


@pytest.fixture
def repo_root():
    return REPO_ROOT
