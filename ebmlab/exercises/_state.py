"""Process-wide flags of the autograder (private)."""

from __future__ import annotations

#: True inside a grading process (the command-line worker, or a check's child process):
#: :func:`ebmlab.exercises.check` then does nothing, so a submission's own
#: ``check(...)`` cells neither run the checks twice nor print.
GRADING = False

#: File descriptors a forked check process closes first (the worker's event pipe).
CLOSE_IN_CHILD: set[int] = set()
