"""The README's two commands and its quick start stay true."""

from __future__ import annotations

import re

import ebmlab as el

from .conftest import ROOT

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_shows_exactly_the_two_setup_commands():
    bash_blocks = re.findall(r"```bash\n(.*?)```", _readme(), re.S)
    commands = [line.split("#")[0].strip() for line in bash_blocks[0].splitlines()]
    assert [c for c in commands if c] == ["make book", "make test"]


def _quick_start() -> tuple[str, str]:
    """The quick start's code and the output the README shows right after it."""
    (found,) = re.findall(r"```python\n(.*?)```\n(?:(?!```).)*?```text\n(.*?)```", _readme(),
                          re.S)
    return found


def test_readme_quick_start_prints_what_the_readme_shows(capsys):
    code, shown = _quick_start()
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    # Every number, in order, as the README prints it; then the words around them.
    assert _NUMBER.findall(printed) == _NUMBER.findall(shown), (
        f"the quick start printed\n{printed}but the README shows\n{shown}")
    assert _NUMBER.sub("#", printed) == _NUMBER.sub("#", shown)

    # And what the numbers mean, against independent references.
    log_z_grid, log_likelihood, ais_line = printed.splitlines()
    assert abs(float(_NUMBER.findall(log_z_grid)[0])) < 1e-4          # normalised: log Z = 0
    assert float(_NUMBER.findall(log_likelihood)[0]) < 0               # a log-likelihood
    estimate, stderr, ess, runs = map(float, _NUMBER.findall(ais_line)[:4])
    exact = float(el.exact_log_partition(namespace["rbm"]).detach())   # 2^6 hidden states
    assert abs(estimate - exact) < 4 * stderr + 0.005, (estimate, stderr, exact)
    assert runs == 100 and 0 < ess <= runs
