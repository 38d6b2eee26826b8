"""Faults on demand: a pulled cable, a stopped sshd, a read-only or full file system.

Every fault is undone by Lab.reset(); the undo functions exist for tests that need the
repair inside one test.
"""

from __future__ import annotations

import shlex

from . import netns
from .node import LabNode


def link_down(node: LabNode) -> None:
    """Unplug the node's cable (host end of its veth down): SSH to it fails."""
    netns.set_host_link(node.name, False)


def link_up(node: LabNode) -> None:
    netns.set_host_link(node.name, True)


def stop_sshd(node: LabNode) -> None:
    """Stop the node's listening sshd; sessions already open stay."""
    node.stop_sshd()


def start_sshd(node: LabNode) -> None:
    node.start_sshd()


def readonly(node: LabNode, path: str) -> None:
    """Make `path` (a file or folder) read-only inside the node: a read-only bind mount."""
    q = shlex.quote(path)
    node.run(f"mount --bind {q} {q} && mount -o remount,bind,ro {q}", check=True)
    node.fault_mounts.append(path)


def writable(node: LabNode, path: str) -> None:
    """Undo readonly()/fill() on `path`."""
    node.run(["umount", "-l", path], check=True)
    if path in node.fault_mounts:
        node.fault_mounts.remove(path)


def fill(node: LabNode, path: str, size: str = "1m") -> None:
    """Make the folder `path` a full file system: a tiny tmpfs holding its old contents,
    filled up with a file `.omwlab-fill` (so writing there fails with ENOSPC)."""
    q = shlex.quote(path)
    node.run(
        f"d=$(mktemp -d /run/omwlab-fill.XXXXXX) && cp -a {q}/. \"$d\"/ && "
        f"mount -t tmpfs -o size={shlex.quote(size)} omwlab-fill {q} && "
        f"cp -a \"$d\"/. {q}/ && rm -rf \"$d\" && "
        f"{{ dd if=/dev/zero of={q}/.omwlab-fill bs=4096 2>/dev/null; true; }}",
        check=True)
    node.fault_mounts.append(path)
