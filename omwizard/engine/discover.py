"""Discover: connect to hosts, find OpenMeetings, read it, and write the plan it already is.

Two round trips per host over the session's pool (usual host-key rules, sudo as configured):
where OpenMeetings lives (facts.discover.find_home_command), then everything at once (the
doctor's snapshot, time zone, exports, fstab, database servers). The plan is built by the pure
facts.discover.build_plan, validated by the plan loader, and written with the plan's own
writer plus a `report:` (disagreements, missing pieces). Secrets found on the nodes (the DB
password in persistence.xml) are never written: the plan says ${OMW_DB_PASSWORD}, and the
report passes through a redactor that knows them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from omwizard.engine.bundle import file_secrets
from omwizard.engine.events import EventBus
from omwizard.engine.files import missing_folder, write_atomically
from omwizard.engine.redact import Redactor
from omwizard.engine.session import Session
from omwizard.engine.step import StepContext
from omwizard.facts import discover as fd
from omwizard.facts.doctor import parse_snapshot, snapshot_command
from omwizard.plan.model import Node, Plan, PlanError, dump_plan, is_ipv4, plan_from_dict
from omwizard.remote.results import RemoteError


class DiscoverError(Exception):
    """Bad hosts or options: the message names the problem and the fix."""


@dataclass
class Discovered:
    """The validated plan, its text (plan + report) and the report itself."""

    plan: Plan
    text: str
    report: dict[str, Any]
    discovery: fd.Discovery


def resolve(host: str) -> str:
    """The IPv4 address a host name has here (the plan needs one per node)."""
    if is_ipv4(host):
        return host
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET)
    except OSError as exc:
        raise DiscoverError(f"{host}: cannot resolve it to an IPv4 address ({exc}); give "
                            "the address instead") from exc
    return str(infos[0][4][0])


def probe_plan(hosts: Sequence[str], ssh: dict[str, Any]) -> Plan:
    """A throwaway plan that only names the hosts (for the pool: one connection each)."""
    if len(hosts) < 2:
        raise DiscoverError("discover needs at least 2 hosts (a cluster has 2 or more nodes): "
                            "name every node of the cluster")
    if len(set(hosts)) != len(hosts):
        raise DiscoverError("a host is named twice: name each node once")
    data = {
        "omwizard": 1,
        "cluster": {"name": "discover", "timezone": "UTC"},
        "ssh": ssh,
        "nodes": [{"name": f"h{i + 1}", "host": h, "address": resolve(h), "roles": ["om"]}
                  for i, h in enumerate(hosts)],
        "database": {"type": "mysql", "host": "localhost", "name": "openmeetings", "user": "om",
                     "password": fd.PASSWORD_REF, "manage": False},
        "storage": {"kind": "existing"},
    }
    try:
        return plan_from_dict(data, env={})
    except PlanError as exc:
        raise DiscoverError(f"the hosts or SSH options are not usable:\n{exc}") from exc


async def read_node(ctx: StepContext, node: Node) -> fd.Seen:
    """One host: where OpenMeetings is, then everything the plan and the report need."""
    try:
        found = await ctx.run(node, fd.find_home_command())
        home, how = fd.parse_home(found.stdout)
        parts = fd.extras_parts()
        if home:
            parts["snapshot"] = snapshot_command(home)
        got = await ctx.run_parts(node, parts)
    except RemoteError as exc:
        return fd.Seen(node.host, node.address, error=f"{exc.message} ({exc.remedy})")
    snap = parse_snapshot(got["snapshot"].stdout) if "snapshot" in got else parse_snapshot("")
    return fd.Seen(
        host=node.host, address=node.address, om_home=home, found_by=how, snapshot=snap,
        timezone=fd.parse_extras(got["timezone"].stdout), exports=got["exports"].stdout,
        fstab=got["fstab"].stdout,
        db_servers=tuple(w for w in got["db"].stdout.split() if w),
    )


async def read_hosts(session: Session) -> list[fd.Seen]:
    """Every host of the session's (probe) plan, in parallel."""
    ctx = StepContext(session.plan, session.pool, None, session.bus or EventBus(),
                      redact=session.redact)
    return list(await asyncio.gather(*(read_node(ctx, n) for n in session.plan.nodes)))


def finish(seen: list[fd.Seen], ssh: dict[str, Any], extra_secrets: Sequence[str] = ()
           ) -> Discovered:
    """Build, validate and render the plan from what was read (pure but for nothing)."""
    discovery = fd.build_plan(seen, ssh)
    redact = Redactor(extra_secrets)
    for s in seen:
        for secret in file_secrets(s.snapshot.files):
            redact.add(secret)
    report = discovery.report(redact)
    try:
        plan = plan_from_dict(discovery.plan, env={})
    except PlanError as exc:
        problems = "\n".join(redact(str(p)) for p in exc.problems)
        raise DiscoverError("what the hosts hold does not make a valid plan:\n" + problems
                            + "\nfix those on the nodes (or name the right hosts) and run "
                            "discover again") from exc
    header = ("# omwizard discover: the plan this cluster already is (secrets as ${VAR}),\n"
              "# then a report of every disagreement between the nodes and what they lack.\n")
    text = header + redact(dump_plan(plan)) + redact(
        yaml.safe_dump({"report": report}, sort_keys=False, allow_unicode=True, width=100))
    return Discovered(plan, text, report, discovery)


def write_text(path: Path, text: str) -> Path:
    """Atomically (temp in the same folder, fsync, rename), mode 0600."""
    if (folder := missing_folder(path)) is not None:
        raise DiscoverError(f"cannot write {path}: the folder {folder} does not exist")
    return write_atomically(path, text)


async def discover(hosts: Sequence[str], ssh: dict[str, Any], **hooks: Any) -> Discovered:
    """Read the hosts and build the plan; hooks: the Session's confirm_host_key,
    ask_password, pool_factory."""
    session = Session(probe_plan(hosts, ssh), **hooks)
    async with session:
        seen = await read_hosts(session)
    return finish(seen, ssh)
