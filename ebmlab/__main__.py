"""Command line of ebmlab: ``python -m ebmlab COMMAND ...`` (or the ``ebmlab`` script).

Commands
--------
grade
    Grade exercise notebooks or Python files:
    ``python -m ebmlab grade PATH [PATH ...] [--json] [--timeout S]``;
    see ``python -m ebmlab grade --help``.
"""

from __future__ import annotations

import sys

_USAGE = """usage: python -m ebmlab COMMAND [ARGS ...]

commands:
  grade PATH [PATH ...] [--json] [--timeout S]
        grade exercise notebooks (.ipynb) or Python files (.py), or folders of them
        (python -m ebmlab grade --help for the options)

options:
  -h, --help     show this message
  --version      show the version of ebmlab
"""


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
    sys.exit(main())
