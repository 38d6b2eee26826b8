"""What a test needs from this machine (root, a tool): without it the test is skipped with the
reason, unless OMW_LAB=required (CI), where a skip would hide a test that never ran: it fails."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    """Skip for the reason; under OMW_LAB=required fail with it instead."""
    if os.environ.get("OMW_LAB") == "required":
        pytest.fail(f"OMW_LAB=required but {reason}", pytrace=False)
    pytest.skip(reason)


def need_tool(tool: str, package: str) -> None:
    """The command `tool` on PATH, from the Debian package `package`; else skip_or_fail."""
    if shutil.which(tool) is None:
        skip_or_fail(f"{tool} is not installed: Debian package {package} "
                     "(scripts/setup-system.sh installs it, as root)")
