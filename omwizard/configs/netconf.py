"""The persistent multicast route, written the way each network configuration system expects.

The documentation's `route add` is lost at reboot. Which file keeps it depends on what
configures the node's network; these pure functions detect that from what was read and
transform the text. Everything else (reading, backing up, writing) is StepContext.edit_file.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

MARK = "omwizard: multicast route for OpenMeetings clustering"
NETPLAN_FILE = "/etc/netplan/60-omwizard-multicast.yaml"
NETPLAN_KINDS = ("ethernets", "bonds", "bridges", "vlans", "wifis", "tunnels", "vrfs")
IFUPDOWN_MAIN = "/etc/network/interfaces"
NETWORKD_DIR = "/etc/systemd/network"
NETWORKD_DROPIN = "omwizard-multicast.conf"


@dataclass(frozen=True)
class NetConfig:
    """How the node configures `iface`: kind netplan|networkmanager|networkd|ifupdown|unknown.

    path: the file to edit (netplan: our own file; ifupdown: the file holding the iface
    stanza; networkd: the drop-in); connection: the NetworkManager connection name;
    present: the route is already persistent; where: the file or connection that has it.
    """

    kind: str
    path: str | None = None
    connection: str | None = None
    present: bool = False
    where: str = ""
    netplan_kind: str = "ethernets"
    ident: str = ""  # netplan: the id the node's files use for iface; networkd: the .network


# -- netplan ------------------------------------------------------------------------------------


def _netplan_devices(text: str) -> dict[str, dict]:
    """{iface: (kind, definition)} from one netplan YAML; unreadable YAML yields nothing."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    net = data.get("network") if isinstance(data, dict) else None
    found: dict[str, dict] = {}
    if not isinstance(net, dict):
        return found
    for kind in NETPLAN_KINDS:
        devices = net.get(kind)
        if not isinstance(devices, dict):
            continue
        for name, definition in devices.items():
            definition = definition if isinstance(definition, dict) else {}
            match = definition.get("match")
            if not isinstance(match, dict):
                match = {}
            real = definition.get("set-name") or match.get("name") or name
            found[str(name)] = {"kind": kind, "def": definition, "real": str(real)}
    return found


def _netplan_ids(files: Mapping[str, str], iface: str) -> tuple[set[str], str]:
    """The ids under which the node's netplan files define iface (netplan merges files by
    id, so a file naming only the id `lan` still configures eth0), and the device kind."""
    ids, kind = {iface}, "ethernets"
    for path in sorted(files):
        for name, dev in _netplan_devices(files[path]).items():
            if iface in (name, dev["real"]) or fnmatch.fnmatch(iface, dev["real"]):
                ids.add(name)
                kind = dev["kind"]
    return ids, kind


def netplan_route_present(text: str, ids: set[str], route: str) -> bool:
    for name, dev in _netplan_devices(text).items():
        if name not in ids:
            continue
        for r in dev["def"].get("routes") or []:
            if isinstance(r, dict) and str(r.get("to")) == route:
                return True
    return False


def netplan_config(files: Mapping[str, str], iface: str, route: str) -> NetConfig:
    """The netplan answer: our own file, under the device kind (ethernets, bonds...) and id
    that the node's files use for iface."""
    ids, kind = _netplan_ids(files, iface)
    ident = sorted(ids - {iface})[0] if ids - {iface} else iface
    for path in sorted(files):
        if netplan_route_present(files[path], ids, route):
            return NetConfig(
                "netplan", NETPLAN_FILE, present=True, where=path, netplan_kind=kind, ident=ident
            )
    return NetConfig("netplan", NETPLAN_FILE, netplan_kind=kind, ident=ident)


def netplan_text(iface_id: str, route: str, kind: str = "ethernets") -> str:
    """Our netplan file: only the route, merged by netplan into the interface's definition."""
    body = {
        "network": {
            "version": 2,
            kind: {iface_id: {"routes": [{"to": route, "scope": "link"}]}},
        }
    }
    return f"# {MARK}\n" + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


# -- ifupdown -----------------------------------------------------------------------------------

STANZA_START = (
    "iface",
    "auto",
    "allow-",
    "mapping",
    "source",
    "source-directory",
    "rename",
    "no-auto-down",
    "no-scripts",
)


def _is_stanza_start(line: str) -> bool:
    word = line.split(maxsplit=1)[0] if line.strip() else ""
    return any(word == s or (s.endswith("-") and word.startswith(s)) for s in STANZA_START)


def _stanza_span(lines: list[str], iface: str) -> tuple[int, int] | None:
    """[start, end) of the first `iface IFACE inet ...` stanza (end after its last option)."""
    for i, line in enumerate(lines):
        words = line.split()
        if len(words) >= 3 and words[0] == "iface" and words[1] == iface and words[2] == "inet":
            end = i + 1
            j = i + 1
            while j < len(lines) and not _is_stanza_start(lines[j].lstrip()):
                if lines[j].strip():
                    end = j + 1
                j += 1
            return i, end
    return None


def ifupdown_has_stanza(text: str, iface: str) -> bool:
    return _stanza_span(text.splitlines(), iface) is not None


def ifupdown_route_present(text: str, iface: str, route: str) -> bool:
    lines = text.splitlines()
    span = _stanza_span(lines, iface)
    if span is None:
        return False
    net = route.split("/", 1)[0]
    for line in lines[span[0] + 1 : span[1]]:
        words = line.split()
        if words and words[0] in ("up", "post-up") and (route in words or net in words):
            return True
    return False


def ifupdown_sources(text: str) -> list[str]:
    """Glob patterns of `source` / `source-directory` lines (for finding the iface stanza)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "source":
            out.append(words[1])
        elif len(words) >= 2 and words[0] == "source-directory":
            out.append(words[1].rstrip("/") + "/*")
    return out


def ifupdown_add_route(text: str | None, iface: str, route: str) -> str | None:
    """Add `up ip route replace ROUTE dev IF` and its `down` line to the iface stanza.

    `replace` keeps ifup from failing when the live route is already there (it is, after
    apply). None when there is no stanza to put it in (nothing is written).
    """
    if text is None:
        return None
    lines = text.splitlines(keepends=True)
    span = _stanza_span([x.rstrip("\n") for x in lines], iface)
    if span is None:
        return None
    if ifupdown_route_present(text, iface, route):
        return text
    start, end = span
    indent = "    "
    for line in lines[start + 1 : end]:
        if line.strip():
            indent = line[: len(line) - len(line.lstrip())] or indent
            break
    add = [
        f"{indent}# {MARK}\n",
        f"{indent}up ip route replace {route} dev {iface}\n",
        f"{indent}down ip route del {route} dev {iface} || true\n",
    ]
    if end > 0 and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join(lines[:end] + add + lines[end:])


def ifupdown_config(files: Mapping[str, str], iface: str, route: str) -> NetConfig | None:
    """The file (interfaces or one it sources) whose stanza configures iface, if any."""
    main = files.get(IFUPDOWN_MAIN)
    if main is None:
        return None
    order = [IFUPDOWN_MAIN] + sorted(
        p
        for p in files
        if p != IFUPDOWN_MAIN and any(fnmatch.fnmatch(p, pat) for pat in ifupdown_sources(main))
    )
    for path in order:
        if ifupdown_has_stanza(files[path], iface):
            present = ifupdown_route_present(files[path], iface, route)
            return NetConfig("ifupdown", path, present=present, where=path if present else "")
    return None


# -- systemd-networkd ---------------------------------------------------------------------------


def _ini_values(text: str, section: str, key: str) -> list[str]:
    values, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        k, sep, v = line.partition("=")
        if sep and current == section and k.strip() == key:
            values.extend(v.split())
    return values


def networkd_matches(text: str, iface: str) -> bool:
    names = _ini_values(text, "Match", "Name")
    return any(fnmatch.fnmatch(iface, n) for n in names)


def networkd_config(files: Mapping[str, str], iface: str, route: str) -> NetConfig | None:
    """The first .network (lexical order, as networkd picks) that matches iface; our drop-in
    beside it; present when that file or one of its drop-ins routes `route`."""
    networks = sorted(
        p for p in files if p.endswith(".network") and networkd_matches(files[p], iface)
    )
    if not networks:
        return None
    path = networks[0]
    dropin = f"{path}.d/{NETWORKD_DROPIN}"
    for candidate in [path] + sorted(p for p in files if p.startswith(f"{path}.d/")):
        if route in _ini_values(files[candidate], "Route", "Destination"):
            return NetConfig("networkd", dropin, present=True, where=candidate)
    return NetConfig("networkd", dropin, ident=path)


def networkd_dropin_text(route: str) -> str:
    return f"# {MARK}\n[Route]\nDestination={route}\nScope=link\n"


# -- NetworkManager -----------------------------------------------------------------------------


def nm_connection(device_show: str) -> str | None:
    """`nmcli -t -f GENERAL.CONNECTION device show IF` -> the connection name ('--' = none)."""
    for line in device_show.splitlines():
        key, _, value = line.partition(":")
        if key == "GENERAL.CONNECTION":
            value = value.strip()
            return None if value in ("", "--") else value
    return None


def nm_routes_have(routes_field: str, route: str) -> bool:
    """`nmcli -g ipv4.routes connection show C` (`224.0.0.0/4, 10.0.0.0/8 10.1.1.1 100`)."""
    for item in re.split(r"\s*,\s*", routes_field.strip()):
        if item.split()[:1] == [route]:
            return True
    return False


# -- the decision -------------------------------------------------------------------------------


def detect(
    files: Mapping[str, str],
    iface: str,
    route: str,
    *,
    nm_conn: str | None = None,
    nm_routes: str = "",
) -> NetConfig:
    """Which system owns iface's configuration, in precedence order.

    netplan first (it generates networkd or NetworkManager config, so those files are not
    the source), then a NetworkManager connection holding the device, then a networkd
    .network matching it, then an ifupdown stanza. files: path -> text of what was read.
    """
    netplan = {
        p: t
        for p, t in files.items()
        if p.startswith("/etc/netplan/") and p.endswith((".yaml", ".yml")) and p != NETPLAN_FILE
    }
    ours = files.get(NETPLAN_FILE)
    if netplan or ours is not None:
        found = netplan_config({**netplan, **({NETPLAN_FILE: ours} if ours else {})}, iface, route)
        return found
    if nm_conn:
        present = nm_routes_have(nm_routes, route)
        return NetConfig(
            "networkmanager",
            connection=nm_conn,
            present=present,
            where=f"NetworkManager connection {nm_conn!r}" if present else "",
        )
    networkd = networkd_config(
        {p: t for p, t in files.items() if p.startswith(NETWORKD_DIR)}, iface, route
    )
    if networkd is not None:
        return networkd
    ifupdown = ifupdown_config(
        {p: t for p, t in files.items() if p.startswith("/etc/network/")}, iface, route
    )
    if ifupdown is not None:
        return ifupdown
    return NetConfig("unknown")
