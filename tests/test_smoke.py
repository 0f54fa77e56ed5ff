"""The package imports and says its version."""

import re

import ebmlab


def test_import_and_version():
    print("ebmlab", ebmlab.__version__)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", ebmlab.__version__)


def test_public_names_exist():
    for name in ebmlab.__all__:
        assert hasattr(ebmlab, name), name
