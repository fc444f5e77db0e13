"""The check every command makes of its output file options before it starts working: a file
that cannot be created (its directory missing or not writable, the path a directory) is a
one-line error at once, not a traceback or a failure after the work is done."""

from __future__ import annotations

import os
from pathlib import Path

from graphsentry.errors import GraphsentryError


def check_writable(path: str | None, option: str) -> None:
    """Raise :class:`GraphsentryError` (``cannot write PATH (--option): …``) when ``path`` could
    not be created or overwritten; ``None`` and ``-`` (stdout) pass. Creates nothing: a command
    that makes missing directories itself does not call this for them."""
    if path is None or path == "-":
        return
    target = Path(path)
    parent = target.parent
    problem = None
    if target.is_dir():
        problem = "is a directory"
    elif not parent.is_dir():
        problem = f"directory {parent} does not exist"
    elif target.exists():
        if not os.access(target, os.W_OK):
            problem = "permission denied"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"permission denied in {parent}"
    if problem is not None:
        raise GraphsentryError(f"cannot write {path} ({option}): {problem}")
