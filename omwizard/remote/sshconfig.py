"""How a node is reached, read from the operator's OpenSSH client config: the route.

Operators already describe their servers in ``~/.ssh/config`` (Host aliases, HostName, User,
Port, IdentityFile, ProxyJump); the plan's ``ssh.config`` names another file. This module
turns a node into a :class:`Route`: the target and the jump hosts in front of it, each with the
address, port, user and key files to use. remote.ssh then opens every hop itself, with the
plan's known_hosts and host-key policy, so each hop's key is checked (asyncssh's own ProxyJump
would check the bastion against ~/.ssh/known_hosts only, and open it once per node).

Who wins: a node's own ``nodes[].ssh`` in the plan, then the config's block for that host
(``Host om1``), then the plan's cluster-wide ``ssh:`` section, then the config's catch-all
blocks (``Host *``), then OpenSSH's defaults. The parsing is asyncssh's; the file is read here.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from asyncssh.config import ConfigParseError, SSHClientConfig

from omwizard.plan.model import Node, Plan, PlanProblem, SSHConfig

DEFAULT_CONFIG = "~/.ssh/config"
_NOWHERE = "omwizard-no-such-host.invalid"  # matches only catch-all blocks
MAX_JUMPS = 5


class SshConfigError(ValueError):
    """The ssh config cannot be used as the plan says: problem and fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Hop:
    """One SSH connection of a route: where, as whom, with which key files."""

    name: str  # as written: the plan's host, or a ProxyJump entry
    host: str  # what is connected to (the config's HostName, else name)
    port: int
    user: str
    identities: tuple[str, ...]  # () : ssh-agent and the default keys

    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Route:
    target: Hop
    jumps: tuple[Hop, ...] = ()  # in the order they are opened
    config: Path | None = None  # the file read (None: none)


def config_path(ssh: SSHConfig) -> Path | None:
    """The ssh config to read: the plan's ssh.config (which must exist), else ~/.ssh/config
    when there is one."""
    if ssh.config is not None:
        path = Path(os.path.expanduser(ssh.config))
        if not path.is_file():
            raise SshConfigError(
                f"ssh.config {ssh.config} does not exist" if not path.exists()
                else f"ssh.config {ssh.config} is not a file",
                "correct the path in the plan's ssh.config, or remove the key to use "
                "~/.ssh/config")
        return path
    default = Path(os.path.expanduser(DEFAULT_CONFIG))
    return default if default.is_file() else None


def _load(path: Path | None, host: str) -> SSHClientConfig:
    try:
        loaded = SSHClientConfig.load(None, [path] if path else [], False, False, False,
                                      getpass.getuser(), (), host, ())
        return cast(SSHClientConfig, loaded)
    except ConfigParseError as exc:
        raise SshConfigError(f"ssh config {path}: {exc}",
                             "correct that line (`ssh -G HOST` shows how OpenSSH reads the "
                             "file), or point the plan's ssh.config at another file") from exc
    except OSError as exc:
        raise SshConfigError(f"ssh config {path} cannot be read: {exc.strerror or exc}",
                             "make it readable for this user, or point ssh.config elsewhere"
                             ) from exc


def _identities(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(os.path.expanduser(str(v)) for v in value)
    return ()


def _hop(path: Path | None, name: str, ssh: SSHConfig, plan_set: frozenset[str],
         user: str | None = None, port: int | None = None) -> tuple[Hop, str | None]:
    """A hop to `name` and its ProxyJump (None: direct). `plan_set`: the keys the node sets
    itself (they beat the config); user/port: given in a ProxyJump entry (they beat all)."""
    cfg = _load(path, name)
    catch_all = _load(path, _NOWHERE) if path else cfg

    def pick(key: str, planned: object) -> object:
        value = cfg.get(key)
        if value is None:
            return planned
        own = value != catch_all.get(key)  # set by a block for this host, not by Host *
        return value if own else planned

    hop_user = user or (ssh.user if "user" in plan_set else str(pick("User", ssh.user)))
    hop_port = port or (ssh.port if "port" in plan_set else int(str(pick("Port", ssh.port))))
    files = _identities(cfg.get("IdentityFile"))
    mine = files and files != _identities(catch_all.get("IdentityFile"))
    if "identity" in plan_set or (ssh.identity and not mine):
        keys: tuple[str, ...] = (os.path.expanduser(ssh.identity),) if ssh.identity else ()
    else:
        keys = files
    hostname = str(cfg.get("Hostname") or name)
    jump = cfg.get("ProxyJump")
    jump_text = str(jump) if jump and str(jump).lower() != "none" else None
    return Hop(name, hostname, hop_port, hop_user, keys), jump_text


def _parse_jump(entry: str) -> tuple[str | None, str, int | None]:
    """[user@]host[:port] of one ProxyJump entry (ssh:// URLs too)."""
    text = entry.strip().removeprefix("ssh://")
    user, _, rest = text.rpartition("@")
    host, port = rest, None
    if rest.count(":") == 1:
        host, port_text = rest.split(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SshConfigError(f"ProxyJump {entry!r} has a bad port",
                                 "write it as [user@]host[:port]")
        port = int(port_text)
    if not host or any(c.isspace() for c in host):
        raise SshConfigError(f"ProxyJump {entry!r} names no host",
                             "write it as [user@]host[:port], hosts separated by commas")
    return user or None, host, port


def route(node: Node) -> Route:
    """The node's route (SshConfigError for an unusable config, a jump loop or bad entry)."""
    ssh = node.ssh
    path = config_path(ssh)
    own = frozenset(node.ssh_overrides)
    target, jump = _hop(path, node.host, ssh, own)
    jumps: list[Hop] = []
    seen = {node.host}
    pending = jump
    while pending:
        entries = [e for e in pending.split(",") if e.strip()]
        if len(jumps) + len(entries) > MAX_JUMPS:
            raise SshConfigError(
                f"the ProxyJump chain for {node.host} is longer than {MAX_JUMPS} hops or loops",
                "check the ProxyJump lines of the hosts in your ssh config")
        before: str | None = None
        chain: list[Hop] = []
        for i, entry in enumerate(entries):
            user, host, port = _parse_jump(entry)
            if host in seen:
                raise SshConfigError(f"the ProxyJump chain for {node.host} loops at {host}",
                                     "check the ProxyJump lines of your ssh config")
            seen.add(host)
            hop, hop_jump = _hop(path, host, ssh, frozenset(), user, port)
            chain.append(hop)
            if i == 0:
                before = hop_jump  # only the first hop's own ProxyJump applies (as OpenSSH)
        jumps[:0] = chain
        pending = before
    return Route(target, tuple(jumps), path)


def route_problems(plan: Plan) -> list[PlanProblem]:
    """What keeps the plan's ssh config from giving each node a route, said as plan problems
    (for `validate`: the file is read, nothing is contacted). Each problem once."""
    problems: dict[str, PlanProblem] = {}
    for i, node in enumerate(plan.nodes):
        try:
            route(node)
        except SshConfigError as exc:
            where = ("ssh.config" if node.ssh.config and "ssh.config" in exc.problem
                     else f"nodes[{i}].host")
            problems.setdefault(exc.problem, PlanProblem(where, exc.problem, exc.fix))
    return list(problems.values())
