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


# -- OpenMeetings as systemd starts it: the stand-in with the unit's JAVA_OPTS ----------------
UNIT = "/etc/systemd/system/openmeetings.service"
DROPINS = "/etc/systemd/system/openmeetings.service.d"
STARTUP = "/opt/om/bin/startup.sh"


def honour_java_opts(node: LabNode) -> None:
    """Let the node's stand-in JVM take $JAVA_OPTS, as Tomcat's catalina.sh does (globbing
    off: the serialization lists hold * and [). Undone by Lab.reset() (pristine /opt)."""
    q = shlex.quote
    node.run(f"grep -q 'java $JAVA_OPTS' {q(STARTUP)} || sed -i "
             f"-e 's/^nohup java /set -f; nohup java $JAVA_OPTS /' {q(STARTUP)}", check=True)


def unit_java_opts(node: LabNode) -> str:
    """JAVA_OPTS as systemd would pass them: the unit, then its drop-ins in name order."""
    from omwizard.configs.javaopts import effective_java_opts

    unit = node.run(["cat", UNIT]).stdout or None
    dropins = node.run(f"cat {DROPINS}/*.conf 2>/dev/null; true").stdout or None
    return " ".join(effective_java_opts(unit, dropins, None))


def start_om(node: LabNode, java_opts: str | None = None) -> None:
    """Start the stand-in as systemd would (JAVA_OPTS from the unit; java_opts overrides,
    "" = none: a hand start that misses the unit's options)."""
    opts = unit_java_opts(node) if java_opts is None else java_opts
    node.run(f"JAVA_OPTS={shlex.quote(opts)} {shlex.quote(STARTUP)}", check=True, timeout=30)


def restart_om(lab, node: LabNode, java_opts: str | None = None,  # noqa: ANN001
               timeout: float = 120) -> None:
    """Stop and start one node's stand-in, then wait until every OM node's log shows the
    whole cluster again."""
    from . import hazelcast

    sizes = {n.name: len(hazelcast.read_log(n)) for n in lab.nodes.values()}
    hazelcast.stop_member(node)
    start_om(node, java_opts)
    pattern = f"Members {{size:{len(lab.nodes)}, ver:"
    for other in lab.nodes.values():
        hazelcast.wait_for_log(other, pattern, timeout=timeout, start=sizes[other.name])
