"""Command line of ebmlab: ``python -m ebmlab COMMAND ...`` (or the ``ebmlab`` script).

Commands
--------
grade
    Grade exercise notebooks or Python files:
    ``python -m ebmlab grade PATH [PATH ...] [--exercises SPEC] [--json] [--csv FILE]
    [--feedback DIR] [-j N]``; see ``python -m ebmlab grade --help``.
"""

from __future__ import annotations

import os
import sys

_USAGE = """usage: python -m ebmlab COMMAND [ARGS ...]

commands:
  grade PATH [PATH ...] [--exercises SPEC] [--json] [--csv FILE] [--feedback DIR] [-j N]
        grade exercise notebooks (.ipynb) or Python files (.py), or folders of them
        (python -m ebmlab grade --help for the options)

options:
  -h, --help     show this message
  --version      show the version of ebmlab
"""


def _shadowed_modules() -> list[str]:
    """Modules imported from the current directory (other than ebmlab itself).

    ``python -m ebmlab`` puts the current directory first on ``sys.path``, so run inside a
    folder of submissions, a student's ``csv.py`` or ``torch.py`` would replace the module
    of that name in the grader. ``ebmlab grade`` (the installed command) and ``python -P -m
    ebmlab grade`` do not put it there.
    """
    here = os.path.realpath(os.getcwd())
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if "." not in name and name != "ebmlab" and path and \
                os.path.dirname(os.path.realpath(path)).startswith(here) and \
                os.path.dirname(os.path.realpath(path)) in (here, os.path.join(here, name)):
            found.append(name)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        from ._version import __version__

        print(f"ebmlab {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "grade":
        from .exercises._cli import main as grade

        return grade(rest)
    print(f"error: unknown command {command!r}\n\n{_USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    if _shadowed_modules():
        print(f"error: Python imported {', '.join(_shadowed_modules())} from the current "
              "directory, which can hold untrusted files: run `ebmlab grade ...` or `python -P "
              "-m ebmlab grade ...`, or run the grader from another directory.", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
