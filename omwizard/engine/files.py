"""Writing the operator's local files (exports, discovered plans, bundles, the plan file)
atomically: a temporary file in the same folder, fsynced, renamed over the target, so a
crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def missing_folder(path: Path) -> Path | None:
    """The folder `path` would be written into, when it does not exist (callers say so)."""
    folder = path.parent if str(path.parent) else Path(".")
    return None if folder.is_dir() else folder


def write_atomically(path: Path, content: str | bytes | Callable[[BinaryIO], None],
                     *, mode: int = 0o600) -> Path:
    """Write `content` (text, bytes, or a writer given the open file) to `path`; mode 0600
    unless told: exports, plans and bundles may hold what only their operator should read."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.resolve()
