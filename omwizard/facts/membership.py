"""A cluster that lives: nodes join and leave. Pure decisions about a change of membership.

- `plan_change`: which nodes a new plan adds, removes or keeps, against the plan last
  applied (the session state keeps it).
- `restart_order`: a serial restart takes first the nodes that are not serving members yet
  (a new node: starting it takes nothing away), then the running members, one at a time.
- `seen_as_member`: a restarted node is back when its latest members list holds itself and
  every member that runs the current configuration.
- `hba_without`: pg_hba.conf without the line of a node that left.
- `DroppedAccount` / `recreate_account_sql`: the MySQL/MariaDB account remove-node dropped,
  as the journal keeps it (no password), and the SQL rollback re-creates it with.
- `predict_touch`: before anything is read, which nodes a plan change will touch and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omwizard.facts.base import StepData
from omwizard.facts.verify import LogFacts

if TYPE_CHECKING:
    from omwizard.plan.model import Plan


@dataclass(frozen=True)
class PlanChange:
    """Node names a plan adds, removes and keeps against the previous one."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed


def plan_change(before: Iterable[str] | None, after: Iterable[str]) -> PlanChange:
    """Compare node names (None before: a first run, every node is new... and nothing is
    'added' to a running cluster, so the change is reported empty)."""
    now = list(after)
    if before is None:
        return PlanChange((), (), tuple(now))
    was = list(before)
    return PlanChange(tuple(n for n in now if n not in was), tuple(n for n in was if n not in now),
                      tuple(n for n in now if n in was))


def restart_order(nodes: list[str], serving: Mapping[str, bool]) -> list[str]:
    """Nodes that do not serve as members yet first (plan order), then the serving ones."""
    return ([n for n in nodes if not serving.get(n, False)]
            + [n for n in nodes if serving.get(n, False)])


def seen_as_member(log: LogFacts, expected: Iterable[str]) -> bool:
    """Does the node's latest start show a members list holding every expected address?"""
    if log.block is None or log.standalone:
        return False
    seen = {addr for addr, _port in log.block.members}
    return set(expected) <= seen


def hba_without(text: str, database: str, user: str, address: str) -> str:
    """pg_hba.conf without the line omwizard wrote for this address (fields compared, not
    spacing); every other line as it was."""
    from omwizard.facts.database import hba_line

    wanted = hba_line(database, user, address).split()
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if line.split("#", 1)[0].split() != wanted)


@dataclass(frozen=True)
class DroppedAccount(StepData):
    """A MySQL/MariaDB account remove-node dropped, as its journal record keeps it: what a
    rollback re-creates. No password: it is stored nowhere, and comes from the plan (the
    database password, e.g. ${OMW_DB_PASSWORD}) when the rollback runs."""

    kind = "dropped-mysql-account"
    user: str
    host: str  # the leaving node's address
    database: str
    all_on_database: bool  # it had ALL on database.* (omwizard's grant)

    @property
    def account(self) -> str:
        return f"'{self.user}'@'{self.host}'"


def recreate_account_sql(dropped: DroppedAccount, password: str) -> str:
    """The account again, with its grant: holds the password, so it goes on stdin only."""
    from omwizard.facts.database import mysql_create_user_sql, mysql_grant_sql

    sql = mysql_create_user_sql(dropped.user, dropped.host, password, dropped.database)
    if dropped.all_on_database:
        return sql
    return sql.replace(mysql_grant_sql(dropped.user, dropped.host, dropped.database), "")


def predict_touch(before: Plan | None, after: Plan) -> dict[str, tuple[str, ...]]:
    """What a plan change will touch, by node, before anything is read: a joining node gets
    every section; its peers only what names the members (the NFS server's exports, the
    database's account, tcp-ip member lists and then a restart, omwizard's firewall rules);
    a node that left, nothing (remove-node stops it). `apply --dry-run` gives the exact
    answer from the nodes themselves."""
    if before is None:
        return {n.name: ("every section",) for n in after.nodes}
    old = {n.name: n for n in before.nodes}
    new = {n.name: n for n in after.nodes}
    moved = [n for n in (*before.nodes, *after.nodes)
             if n.name not in old or n.name not in new
             or (n.is_om and old[n.name].address != new[n.name].address)]
    names = ", ".join(dict.fromkeys(n.name for n in moved))
    out: dict[str, tuple[str, ...]] = {}
    for node in after.nodes:
        if node.name not in old:
            out[node.name] = ("every section (joins the cluster)",)
            continue
        if not moved:
            continue
        steps = []
        if after.network.firewall == "manage":
            steps.append(f"network.firewall (rules for {names}, where a firewall filters)")
        if node.is_storage and after.storage.kind == "nfs":
            steps.append(f"storage.nfs-server (exports for {names})")
        if node.is_database and after.database.manage and \
                after.database.host in (node.address, node.host):
            steps.append(f"database.remote-user (accounts for {names})")
        if node.is_om and after.network.join == "tcp-ip":
            steps += ["nodes.hazelcast-xml (member list)", "verify.restart (one at a time)"]
        if steps:
            out[node.name] = tuple(steps)
    return out
