"""The README's two commands and its quick start stay true."""

from __future__ import annotations

import re

from .conftest import ROOT


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_shows_exactly_the_two_setup_commands():
    bash_blocks = re.findall(r"```bash\n(.*?)```", _readme(), re.S)
    commands = [line.split("#")[0].strip() for line in bash_blocks[0].splitlines()]
    assert [c for c in commands if c] == ["make book", "make test"]


def test_readme_quick_start_runs(capsys):
    (code,) = re.findall(r"```python\n(.*?)```", _readme(), re.S)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert abs(float(re.search(r"tensor\(([-\d.e+]+)", lines[0]).group(1))) < 1e-4  # log Z = 0
    assert float(re.search(r"tensor\(([-\d.e+]+)", lines[1]).group(1)) < 0  # a log-likelihood
    assert lines[2].startswith("log Z = ")
