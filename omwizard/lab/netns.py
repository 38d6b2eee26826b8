"""Bridge, veth pairs and network namespaces of the test lab.

Everything is named with one prefix so that a crashed run can be cleaned up by the next one.
No default route and no forwarding: lab traffic stays on the bridge (198.18.0.0/24).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PREFIX = "omwlab-"  # network namespaces and the bridge
LINK_PREFIX = "omwl-"  # host side of each veth (names are limited to 15 characters)
BRIDGE = "omwlab-br"
HOST_ADDRESS = "198.18.0.1"
PREFIXLEN = 24
NETNS_DIR = Path("/run/netns")


class LabCommandError(RuntimeError):
    """A lab set-up command failed; the message carries the command and its stderr."""


def sh(argv: list[str], *, check: bool = True, input: str | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a host command without a shell (argv only, so nothing needs quoting)."""
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        why = proc.stderr.strip() or proc.stdout.strip()
        raise LabCommandError(f"{' '.join(argv)} exited {proc.returncode}: {why}")
    return proc


def netns_name(node: str) -> str:
    return PREFIX + node


def veth_name(node: str) -> str:
    name = LINK_PREFIX + node
    if len(name) > 15:
        raise ValueError(f"node name {node!r} too long for an interface name ({name})")
    return name


def create_bridge() -> None:
    """The lab's bridge; multicast snooping off so multicast floods to every node."""
    sh(["ip", "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0"])
    sh(["ip", "addr", "add", f"{HOST_ADDRESS}/{PREFIXLEN}", "dev", BRIDGE])
    sh(["ip", "link", "set", BRIDGE, "up"])


def create_node_net(node: str, address: str) -> None:
    """A namespace joined to the bridge by a veth whose inside end is eth0."""
    ns, veth = netns_name(node), veth_name(node)
    sh(["ip", "netns", "add", ns])
    sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    sh(["ip", "link", "set", veth, "master", BRIDGE])
    sh(["ip", "link", "set", veth, "up"])
    sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    sh(["ip", "-n", ns, "addr", "add", f"{address}/{PREFIXLEN}", "dev", "eth0"])
    sh(["ip", "-n", ns, "link", "set", "eth0", "up"])


def set_host_link(node: str, up: bool) -> None:
    """The host end of a node's cable: down is an unplugged cable for the node."""
    sh(["ip", "link", "set", veth_name(node), "up" if up else "down"])


def lab_namespaces() -> list[str]:
    """Names of existing network namespaces with the lab prefix."""
    proc = sh(["ip", "-j", "netns", "list"], check=False)
    names: list[str] = []
    if proc.returncode == 0 and proc.stdout.strip():
        names = [entry["name"] for entry in json.loads(proc.stdout)]
    elif NETNS_DIR.is_dir():
        names = [p.name for p in NETNS_DIR.iterdir()]
    return sorted(n for n in names if n.startswith(PREFIX))


def lab_links() -> list[str]:
    """Host interfaces with a lab prefix (veth host ends and the bridge)."""
    proc = sh(["ip", "-j", "link", "show"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    names = [entry["ifname"] for entry in json.loads(proc.stdout)]
    return sorted(n for n in names if n.startswith((PREFIX, LINK_PREFIX)))


def netns_inodes() -> dict[int, str]:
    """Inode of each lab namespace, to recognise processes that live in one."""
    inodes: dict[int, str] = {}
    for name in lab_namespaces():
        try:
            inodes[os.stat(NETNS_DIR / name).st_ino] = name
        except OSError:
            pass
    return inodes


def delete_all() -> None:
    """Delete every lab namespace, link and the bridge (veths go with their namespace)."""
    for ns in lab_namespaces():
        sh(["ip", "netns", "delete", ns], check=False)
    for link in lab_links():
        sh(["ip", "link", "delete", link], check=False)
