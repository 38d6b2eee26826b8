"""The test lab: real OpenSSH hosts in namespaces on this machine (see LAB.md).

Used by the test suite and by `omwizard rehearse`.
"""

from .lab import (
    DB_ADDRESS,
    Lab,
    LabBusy,
    build_lab,
    build_om_tree,
    cleanup_leftovers,
    missing_requirements,
)
from .netns import BRIDGE, HOST_ADDRESS, PREFIX, LabCommandError
from .node import LabNode
from .omfiles import OmFiles, OmFilesError, fixture_files, operator_files, shared_dir


def set_timezone(node: LabNode, zone: str) -> None:
    """The node's zone via /etc/timezone and /etc/localtime (undone by Lab.reset())."""
    node.set_timezone(zone)


def add_user(node: LabNode, name: str, password: str | None = None,
             nopasswd: bool = False) -> None:
    """A non-root login user with sudo on that node only (undone by Lab.reset())."""
    node.add_user(name, password=password, nopasswd=nopasswd)


__all__ = [
    "BRIDGE", "DB_ADDRESS", "HOST_ADDRESS", "PREFIX", "Lab", "LabBusy", "LabCommandError",
    "LabNode", "OmFiles", "OmFilesError", "add_user", "build_lab", "build_om_tree",
    "cleanup_leftovers", "fixture_files", "missing_requirements", "operator_files",
    "set_timezone", "shared_dir",
]
