"""Every chapter and exercise notebook runs on its own, as Colab, Binder or a download get it.

The wheel is built and installed into a fresh virtual environment, with no repository on
its path, by the notebooks' own set-up cell; then each notebook is copied alone into an
empty folder and executed there (``standalone``: a few minutes, run by ``make test``). The
environment reuses the installed dependencies (torch and the rest) of the running one, minus
``ebmlab``, and pip is kept offline, so the test needs no network. Kernels talk over IPC
sockets: TCP ports picked by one process can be taken by a kernel another starts at the same
moment ("Address already in use", then "Kernel died before replying to kernel_info").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_notebook_setup import _URL, NOTEBOOKS, _source

_RUN_NOTEBOOK = textwrap.dedent("""
    import shutil, sys, tempfile, time
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    path, folder = sys.argv[1], sys.argv[2]
    nb = nbformat.read(path, as_version=4)
    # IPC sockets, not TCP ports: two kernels started at once cannot race for a port.
    sockets = tempfile.mkdtemp(prefix="ebmlab-kernel-")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/k")
    start = time.perf_counter()
    try:
        NotebookClient(nb, km=km, timeout=600, resources={"metadata": {"path": folder}}
                       ).execute(cwd=folder)
    finally:
        km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    nbformat.write(nb, path)
    print(f"{time.perf_counter() - start:.1f}")
""")


def _without_ebmlab(site_packages: Path, view: Path) -> None:
    """Make ``view`` a copy (by symlinks) of ``site_packages`` without ebmlab's entries."""
    ours = re.compile(r"^(__editable__[._]+)?ebmlab([-_.]|$)", re.I)
    view.mkdir()
    for entry in site_packages.iterdir():
        if not ours.match(entry.name):
            (view / entry.name).symlink_to(entry)


def _fresh_environment(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A virtual environment that has ebmlab's dependencies but not ebmlab, and its env."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_path('purelib'))"], check=True,
                               capture_output=True, text=True).stdout.strip())
    _without_ebmlab(Path(sysconfig.get_path("purelib")), tmp / "deps")
    (site / "_ebmlab_test_deps.pth").write_text(
        f"import site; site.addsitedir({str(tmp / 'deps')!r})\n")
    kernel = tmp / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "MPLBACKEND", "EBMLAB_BOOK_BUILD", "VIRTUAL_ENV"}}
    env.update(JUPYTER_PATH=str(tmp / "jupyter"), IPYTHONDIR=str(tmp / "ipython"),
               PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return python, env


def _execute(python: Path, env: dict[str, str], notebook: Path) -> tuple[float, str]:
    """Execute ``notebook`` in its folder; return (seconds, error text or "")."""
    done = subprocess.run([str(python), "-c", _RUN_NOTEBOOK, str(notebook),
                           str(notebook.parent)], cwd=notebook.parent, env=env,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode:
        return float("nan"), (done.stdout + done.stderr)[-4000:]
    return float(done.stdout.split()[-1]), ""


@pytest.mark.slow
@pytest.mark.standalone
def test_every_notebook_runs_alone_against_the_installed_wheel(tmp_path, capsys):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(dist), str(ROOT)], check=True, capture_output=True)
    (wheel,) = dist.glob("ebmlab-*.whl")
    shipped = sorted(n for n in zipfile.ZipFile(wheel).namelist()
                     if n.startswith("ebmlab/recipes/checkpoints/"))
    checkpoints = sorted(p.relative_to(ROOT).as_posix()
                         for p in (ROOT / "ebmlab" / "recipes" / "checkpoints").glob("*.pt"))
    assert shipped == checkpoints and checkpoints, shipped  # every checkpoint, as package data
    python, env = _fresh_environment(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = [str(python), "-c", "import importlib.util as u; print(u.find_spec('ebmlab'))"]
    assert subprocess.run(probe, cwd=empty, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "None"

    # 1. The set-up cell installs ebmlab (from the wheel instead of the release archive),
    #    and the package imports in the same kernel, from the environment.
    setup = json.loads(NOTEBOOKS[0].read_text())
    probe_cell = {"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {},
                  "outputs": [], "source": "import ebmlab\nprint(ebmlab.__file__)"}
    setup["cells"] = [setup["cells"][0], probe_cell]
    url = _URL.search(_source(setup["cells"][0])).group(1)
    setup["cells"][0]["source"] = _source(setup["cells"][0]).replace(url, str(wheel))
    install = tmp_path / "install" / "setup.ipynb"
    install.parent.mkdir()
    install.write_text(json.dumps(setup))
    seconds, error = _execute(python, env, install)
    assert not error, error
    printed = json.loads(install.read_text())["cells"][1]["outputs"][0]["text"]
    location = Path("".join(printed).strip())
    assert location.is_relative_to(python.parent.parent), location

    # 2. Every notebook, alone in an empty folder, in parallel on the machine's cores.
    runs = []
    for path in NOTEBOOKS:
        folder = tmp_path / "run" / f"{path.parent.name}-{path.stem}"
        folder.mkdir(parents=True)
        runs.append(Path(shutil.copy(path, folder)))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda nb: _execute(python, env, nb), runs))
    wall = time.perf_counter() - start

    lines = [f"set-up cell (installs the wheel): {seconds:6.1f} s"]
    for path, (sec, _) in zip(NOTEBOOKS, results, strict=True):
        lines.append(f"{path.relative_to(ROOT / 'book').as_posix():45s} {sec:6.1f} s")
    lines.append(f"all {len(runs)} notebooks, in parallel: {wall:6.1f} s wall")
    with capsys.disabled():  # the times belong in the test log, pass or fail
        print("\n" + "\n".join(lines))
    failed = {p.name: err for p, (_, err) in zip(NOTEBOOKS, results, strict=True) if err}
    assert not failed, "\n\n".join(f"{name}:\n{err}" for name, err in failed.items())
