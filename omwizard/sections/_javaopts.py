"""Where an OM node's JAVA_OPTS live, and how omwizard adds options there (shared helper).

Used by `database.openjpa-serialization` (the CVE-2024-54676 black/white lists) and by
`storage.data-dir` (-DDATA_DIR). Usage from a step:

    finding = await java_opts_status(ctx, node, ["-DDATA_DIR=/opt/omdata"])   # in check()
    await add_java_opts(ctx, node, ["-DDATA_DIR=/opt/omdata"])                # in apply()

Where JAVA_OPTS come from (decided per node by `locate`):
- a systemd unit `openmeetings.service` in /etc/systemd/system, /lib/systemd/system or
  /usr/lib/systemd/system (OM's shipped unit has `Environment='JAVA_OPTS=...'`): omwizard
  writes the drop-in /etc/systemd/system/openmeetings.service.d/omwizard.conf, which repeats
  the unit's tokens (a drop-in assignment replaces the unit's), then runs
  `systemctl daemon-reload` when systemd runs (skipped, and said, when it does not);
- otherwise Tomcat's {om_home}/bin/setenv.sh, appended as `JAVA_OPTS="$JAVA_OPTS ..."`.
What is in force is computed by omwizard.configs.javaopts.effective_java_opts (unit, then our
drop-in, then setenv.sh). Rollback is the engine's: the drop-in is removed (and its directory,
if we made it and it is empty), setenv.sh restored, and daemon-reload run again afterwards.
"""

from __future__ import annotations

import posixpath

from omwizard.configs.javaopts import (
    DROPIN_PATH,
    dropin_with_opts,
    effective_java_opts,
    missing_opts,
    setenv_with_opts,
)
from omwizard.engine.step import Finding, StepContext
from omwizard.facts.javaopts import SYSTEMD_RUNNING, JavaOptsSource, JavaOptsState
from omwizard.om.layout import UNIT_FILES, OmLayout
from omwizard.plan.model import Node

DAEMON_RELOAD = ["systemctl", "daemon-reload"]


async def locate(ctx: StepContext, node: Node) -> JavaOptsSource:
    """Every file JAVA_OPTS can come from, in one round trip; the systemd probe once a run."""
    setenv_path = f"{OmLayout(ctx.plan.cluster.om_home).bin}/setenv.sh"
    files = await ctx.read_texts(node, [*UNIT_FILES, DROPIN_PATH, setenv_path])
    unit_path = next((p for p in UNIT_FILES if files[p] is not None), None)
    systemd_running = await ctx.fact(node, SYSTEMD_RUNNING)
    return JavaOptsSource(
        unit_path=unit_path,
        unit=files[unit_path] if unit_path else None,
        dropin=files[DROPIN_PATH] if unit_path else None,
        setenv_path=setenv_path,
        setenv=files[setenv_path],
        systemd_running=systemd_running,
    )


async def java_opts_status(ctx: StepContext, node: Node, wanted: list[str]) -> Finding:
    """ok when every wanted option is in force; needs-change names what is missing and where."""
    src = await locate(ctx, node)
    missing = missing_opts(src.effective, wanted)
    note = "" if src.systemd_running or not src.unit_path else (
        "; systemd is not running here, so `systemctl daemon-reload` is skipped "
        "(the unit is read at the next start)")
    if not missing:
        return Finding.ok(f"JAVA_OPTS from {src.where} contain {' '.join(wanted)}{note}",
                          data=JavaOptsState(src.where))
    target = DROPIN_PATH if src.unit_path else src.setenv_path
    return Finding.needs(
        f"JAVA_OPTS from {src.where} lack {' '.join(missing)}",
        f"omwizard adds them in {target}, then restart OpenMeetings{note}",
        data=JavaOptsState(src.where, tuple(missing)),
    )


async def add_java_opts(ctx: StepContext, node: Node, wanted: list[str]) -> None:
    """Add the options where JAVA_OPTS live (see module doc); journaled, undone by rollback."""
    src = await locate(ctx, node)
    if src.unit_path is None:
        await ctx.edit_file(node, src.setenv_path, lambda text: setenv_with_opts(text, wanted),
                            mode="0755")
        return
    base = effective_java_opts(src.unit, src.dropin, None)
    folder = posixpath.dirname(DROPIN_PATH)
    if src.systemd_running:
        # Journaled first, so that rollback (newest first) reloads after removing the drop-in.
        await ctx.change_command(node, ["true"], DAEMON_RELOAD)
    if src.dropin is None:
        await ctx.change_command(node, ["mkdir", "-p", folder],
                                 ["rmdir", "--ignore-fail-on-non-empty", folder])
    await ctx.edit_file(node, DROPIN_PATH, lambda text: dropin_with_opts(text, base, wanted))
    if src.systemd_running:
        await ctx.change_command(node, DAEMON_RELOAD, None)
