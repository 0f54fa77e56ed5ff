"""Packaging: the wheel, the pinned environment files and the committed notebooks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _direct_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        assert version, f"constraints.txt line is not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def _environment_pip_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    pinned_python = re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert pinned_python, "environment.yml must pin python=3.11"
    pins = {}
    for m in re.finditer(r"^\s+-\s+([A-Za-z0-9_.\-]+)==([^\s#]+)\s*$", text, re.M):
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_constraints_pin_every_direct_requirement_within_its_range():
    pins = _constraints()
    assert pins[canonicalize_name("torch")] == "2.13.0"
    assert pins[canonicalize_name("jupyter-book")].startswith("1.")
    for req in _direct_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency in pyproject.toml but not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"
        )


def test_environment_yml_matches_pyproject_and_constraints():
    env = _environment_pip_pins()
    direct = {canonicalize_name(r.name) for r in _direct_requirements()}
    assert set(env) == direct, (
        f"environment.yml and pyproject.toml list different packages: "
        f"only in environment.yml {sorted(set(env) - direct)}, "
        f"only in pyproject.toml {sorted(direct - set(env))}"
    )
    pins = _constraints()
    for name, version in env.items():
        assert pins[name] == version, (
            f"{name}: environment.yml pins {version}, constraints.txt {pins[name]}")


def test_committed_notebooks_carry_no_outputs():
    files = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert files, "no committed notebooks found"
    dirty = []
    for f in files:
        nb = json.loads((ROOT / f).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(f)
                break
    assert not dirty, f"notebooks committed with outputs (clear them): {dirty}"


@pytest.mark.slow
def test_wheel_contains_the_package_only(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ebmlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ebmlab/__init__.py" in names
    assert any(n.startswith("ebmlab/energies/") for n in names)
    top = {n.split("/")[0] for n in names}
    assert all(t == "ebmlab" or t.endswith(".dist-info") for t in top), sorted(top)
    assert not any(n.startswith(("solutions/", "tests/", "book/", "benchmarks/")) for n in names)
