"""A node leaves the cluster: what its peers drop, and the leaving node stopped.

Most of a departure is the ordinary apply of the plan without the node (tcp-ip member lists in
hazelcast.xml, omwizard's firewall rules: their checks compare with the plan). What the plan
alone cannot say is what was there for the node that left: its line in /etc/exports and its
database account (MySQL/MariaDB `'user'@'address'`, PostgreSQL's pg_hba.conf line). These
steps are given the leaving node and drop exactly that; `omwizard remove-node` runs them
(cli/nodes.py). They are journaled like every change, under their section's name.
"""

from __future__ import annotations

import shlex

from omwizard.configs.exports import exports_remove
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts import database as dbsql
from omwizard.facts.membership import DroppedAccount, hba_without
from omwizard.facts.verify import OM_PROCESS
from omwizard.om.layout import UNIT, OmLayout
from omwizard.plan.model import Node, Plan

EXPORTS = "/etc/exports"
MYSQL_KINDS = ("mysql", "mariadb")


class _Departure(Step):
    """A step about the node that leaves (`leaving`), run on its peers or on itself."""

    def __init__(self, name: str, title: str, leaving: Node) -> None:
        super().__init__(name, title, f"{leaving.name} leaves the cluster: {title.lower()}.")
        self.leaving = leaving


def _storage_server(plan: Plan, node: Node) -> str | None:
    if plan.storage.kind != "nfs" or not node.is_storage:
        return "not the NFS server"
    return None


class DropExportStep(_Departure):
    """The storage node's /etc/exports line for the leaving node, and the live export."""

    section = "storage"
    skip_when = (_storage_server,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        path, addr = ctx.plan.storage.path, self.leaving.address
        current = await ctx.read_text(node, EXPORTS) or ""
        if exports_remove(current, path, addr) == current:
            return Finding.ok(f"{EXPORTS} exports {path} to no {addr} ({self.leaving.name})")
        return Finding.needs(f"{EXPORTS} still exports {path} to {addr} ({self.leaving.name})",
                             "omwizard removes that client and runs `exportfs -ra`")

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        path, addr = ctx.plan.storage.path, self.leaving.address
        # journaled first, so a rollback re-exports after the file is restored (newest first)
        await ctx.change_command(node, ["true"], ["exportfs", "-ra"])
        await ctx.edit_file(node, EXPORTS, lambda t: exports_remove(t or "", path, addr))
        await ctx.change_command(node, ["exportfs", "-ra"], None,
                                 undo_text="the re-export runs on rollback after the file")


def _database_node(plan: Plan, node: Node) -> str | None:
    db = plan.database
    if not db.manage or not node.is_database or db.host not in (node.address, node.host):
        return "not the managed database node"
    if db.type not in (*MYSQL_KINDS, "postgresql"):
        return f"omwizard does not manage {db.type} accounts"
    return None


class DropDbAccountStep(_Departure):
    """MySQL/MariaDB: DROP USER 'user'@'address'; PostgreSQL: its pg_hba.conf line."""

    section = "database"
    skip_when = (_database_node,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        db, addr = ctx.plan.database, self.leaving.address
        if db.type in MYSQL_KINDS:
            cmd, prefix = dbsql.mysql_client(db)
            probe = await ctx.run(node, cmd, input=prefix + dbsql.mysql_probe_sql(db.user,
                                                                                  db.name))
            if not probe.ok:
                return Finding.failed(f"cannot query the database server as admin: "
                                      f"{probe.output[-300:]}",
                                      "make sure it runs, then run remove-node again")
            if addr in dbsql.parse_mysql_probe(probe.stdout).users:
                return Finding.needs(f"'{db.user}'@'{addr}' ({self.leaving.name}) still exists",
                                     "omwizard drops that account", probe.evidence())
            return Finding.ok(f"no '{db.user}'@'{addr}'", probe.evidence())
        hba_file = await self._hba_file(ctx, node)
        text = await ctx.read_text(node, hba_file) or ""
        if hba_without(text, db.name, db.user, addr) == text:
            return Finding.ok(f"{hba_file} has no line of omwizard's for {addr}")
        return Finding.needs(f"{hba_file} still admits {addr} ({self.leaving.name})",
                             "omwizard removes that line and reloads PostgreSQL")

    async def _hba_file(self, ctx: StepContext, node: Node) -> str:
        db = ctx.plan.database
        probe = await ctx.run(node, dbsql.psql_script(db, "-f -"),
                              input=dbsql.admin_prefix(db) + dbsql.pg_probe_sql(db.user, db.name))
        return dbsql.parse_pg_probe(probe.stdout).hba_file or ""

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        db, addr = ctx.plan.database, self.leaving.address
        if db.type in MYSQL_KINDS:
            cmd, prefix = dbsql.mysql_client(db)
            probe = await ctx.run(node, cmd, input=prefix + dbsql.mysql_probe_sql(db.user,
                                                                                  db.name))
            granted = addr in dbsql.parse_mysql_probe(probe.stdout).granted
            argv = cmd if isinstance(cmd, list) else ["sh", "-c", cmd]
            drop = dbsql.mysql_drop_user_sql(db.user, addr)
            # rollback has database.remote-user re-create it with the plan's password then
            # (the journal keeps who, where and which grant; the password is kept nowhere)
            await ctx.change_command(
                node, argv, None, input=prefix + drop,
                undo_step="remote-user",
                undo_data=DroppedAccount(db.user, addr, db.name, granted),
                undo_text=(f"nothing run by rollback: the account's password is kept nowhere; "
                           f"put {self.leaving.name} back in the plan and apply --section "
                           "database to re-create it"))
            return
        hba_file = await self._hba_file(ctx, node)
        reload = ["sh", "-c", dbsql.psql_script(db, "-c 'SELECT pg_reload_conf()'")]
        if db.admin_user is None:
            await ctx.change_command(node, ["true"], reload)  # rollback reloads after restore
        await ctx.edit_file(node, hba_file, lambda t: hba_without(t or "", db.name, db.user,
                                                                  addr))
        await ctx.change_command(node, reload, None, input=dbsql.admin_prefix(db) or None,
                                 undo_text="the reload runs on rollback after the file")


class StopLeavingStep(_Departure):
    """OpenMeetings stopped on the leaving node, so it stops joining the cluster."""

    section = "verify"
    facts = (OM_PROCESS,)

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        if node.name != self.leaving.name or not node.is_om:
            return "not the leaving OpenMeetings node"
        return None

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        facts = await ctx.fact(node, OM_PROCESS)
        evidence = await ctx.fact_evidence(node, OM_PROCESS)
        if not facts["pids"]:
            return Finding.ok(f"OpenMeetings is not running on {node.name}", evidence)
        return Finding.needs(f"OpenMeetings runs on {node.name} (pid "
                             f"{', '.join(str(p) for p in facts['pids'])}) and would rejoin",
                             "omwizard stops it", evidence)

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        facts = await ctx.fact(node, OM_PROCESS)
        lay = OmLayout(ctx.plan.cluster.om_home)
        if facts["systemd"] and facts["unit"] is not None:
            stop, start = ["systemctl", "stop", UNIT], ["systemctl", "start", UNIT]
        else:
            stop = ["sh", "-c", shlex.quote(lay.bin + "/shutdown.sh")]
            start = ["sh", "-c", shlex.quote(lay.bin + "/startup.sh")]
        # Not undone by rollback: the node is out of the plan, and rolling back its own
        # changes (remove-node --leaving rollback) must not start it again to rejoin.
        await ctx.change_command(
            node, stop, None, timeout=180, stream=True,
            undo_text=f"nothing run by rollback (the node left the plan); to serve again: "
                      f"{' '.join(start)}")
