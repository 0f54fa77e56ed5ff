"""The package uses no private API of torch and no other package's private helper.

Scans the source of ``ebmlab`` (the syntax tree, not the text): no attribute chain rooted at
an imported third-party module reaches a name with a leading underscore (``torch._C``,
``torch.optim.optimizer._default_to_fused_or_foreach``), and no ``import`` names one.
Dunder names (``__version__``) are public. ``ebmlab``'s own private modules are its own.
Two standard-library functions carry an underscore but are documented public API:
``os._exit`` (end a forked process at once) and ``sys._getframe``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

SOURCES = sorted((ROOT / "ebmlab").rglob("*.py"))
DOCUMENTED = {"os._exit", "sys._getframe"}


def _private(name: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in name.split("."))


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    foreign: set[str] = set()          # local names bound to third-party modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "ebmlab":
                    foreign.add(alias.asname or alias.name.split(".")[0])
                    if _private(alias.name):
                        found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "ebmlab":
                continue
            for alias in node.names:
                foreign.add(alias.asname or alias.name)
                if _private(node.module) or _private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            name = f"{getattr(base, 'id', '')}.{'.'.join(reversed(chain))}"
            if isinstance(base, ast.Name) and base.id in foreign and _private(node.attr) \
                    and not _private(".".join(reversed(chain[1:]))) and name not in DOCUMENTED:
                found.append(f"line {node.lineno}: {name}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_private_api_of_other_packages(path: Path):
    assert _violations(path) == []


def test_the_scan_finds_private_names(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom torch.optim.optimizer import _default_to_fused_or_foreach\n"
                   "x = torch._C._functorch.is_batchedtensor\ny = torch.ones(1).__len__\n")
    assert [v.split(":")[0] for v in _violations(bad)] == ["line 2", "line 3"]
