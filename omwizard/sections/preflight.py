"""Preflight: can we reach every node, is OpenMeetings there, and do the nodes agree on time."""

from __future__ import annotations

import shlex

from omwizard.layout import OmLayout, version_from_jars, version_text
from omwizard.plan import Node
from omwizard.step import Finding, Step, StepContext

TIMEZONE_DOC = (
    "All servers should be configured to have same Time zone (To avoid Schedulers to drop "
    "user sessions as outdated)"
)


class SshStep(Step):
    section = "preflight"
    name = "ssh"
    title = "SSH and sudo"
    doc = (
        "Multiple OM servers should be set up as described in Installation. omwizard reaches "
        "each of them over SSH, with the host key checked and root rights through sudo."
    )

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        remote = ctx.pool.get(node)
        await remote.connect()
        mode = await remote.sudo_mode()
        how = {
            "none": f"logged in as {node.ssh.user}",
            "nopasswd": f"logged in as {node.ssh.user}, sudo without password",
            "password": f"logged in as {node.ssh.user}, sudo with password",
        }[mode]
        if node.ssh.user != "root" and node.ssh.sudo == "never":
            how += " (sudo: never: changes need root rights)"
        return Finding.ok(f"{how} at {node.host}:{node.ssh.port}")


def parse_timezone_probe(output: str) -> tuple[str, str] | None:
    """(source, zone) from the probe's `source:zone` line; None when nothing told."""
    for line in output.splitlines():
        source, _, zone = line.strip().partition(":")
        zone = zone.strip()
        if source in {"timedatectl", "etc-timezone", "localtime"} and zone:
            if source == "localtime":
                zone = zone.split("zoneinfo/", 1)[-1]
            return source, zone
    return None


TIMEZONE_PROBE = (
    "z=$(timedatectl show -p Timezone --value 2>/dev/null) && [ -n \"$z\" ] "
    "&& { echo \"timedatectl:$z\"; exit 0; }; "
    "[ -s /etc/timezone ] && { echo \"etc-timezone:$(head -n1 /etc/timezone)\"; exit 0; }; "
    "l=$(readlink /etc/localtime 2>/dev/null) && { echo \"localtime:$l\"; exit 0; }; "
    "echo unknown; exit 0"
)


class OmInstalledStep(Step):
    section = "preflight"
    name = "om-installed"
    title = "OpenMeetings installed"
    doc = "OpenMeetings 2.1 or later is required to use clustering."

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return None if node.is_om else "not an OpenMeetings node (role om)"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        layout = OmLayout(ctx.plan.cluster.om_home)
        hz, lib = shlex.quote(layout.hazelcast_xml), shlex.quote(layout.lib)
        result = await ctx.run(
            node, f"test -f {hz} && echo HAZELCAST_XML; ls -1 {lib} 2>/dev/null; true"
        )
        lines = result.stdout.splitlines()
        if "HAZELCAST_XML" not in lines:
            return Finding.failed(
                f"no OpenMeetings at {ctx.plan.cluster.om_home} ({layout.hazelcast_xml} missing)",
                "install OpenMeetings as its Installation page says, or set cluster.om_home "
                "to where it is installed",
                result.evidence(),
            )
        version = version_from_jars(lines)
        ctx.shared.setdefault("om_version", {})[node.name] = version
        text = version_text(version)
        if version is not None and version[:2] < (2, 1):
            return Finding.failed(
                f"OpenMeetings {text}: clustering needs 2.1 or later",
                "upgrade OpenMeetings on this node first",
                result.evidence(),
            )
        if version is not None and version[:2] == (4, 0):
            return Finding.ok(
                f"OpenMeetings {text} (4.0.x: Hazelcast 3 schema, no member attributes, logs in log/)",
                result.evidence(),
                version=text,
            )
        return Finding.ok(f"OpenMeetings {text}", result.evidence(), version=text)


class TimezoneStep(Step):
    section = "preflight"
    name = "timezone"
    title = "Same time zone everywhere"
    doc = TIMEZONE_DOC
    has_apply = True

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        want = ctx.plan.cluster.timezone
        result = await ctx.run(node, TIMEZONE_PROBE, sudo=False)
        seen = parse_timezone_probe(result.stdout)
        if seen is None:
            return Finding.needs(
                "the node's time zone could not be read",
                f"omwizard sets it to {want}",
                result.evidence(),
                source="unknown",
                zone=None,
            )
        source, zone = seen
        if zone == want:
            return Finding.ok(f"{zone} (from {source})", result.evidence())
        return Finding.needs(
            f"time zone is {zone}, the cluster's is {want}",
            f"set the node's zone to {want}",
            result.evidence(),
            source=source,
            zone=zone,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        want = ctx.plan.cluster.timezone
        old = finding.data.get("zone")
        zoneinfo = f"/usr/share/zoneinfo/{want}"
        probe = await ctx.run(node, ["test", "-f", zoneinfo])
        if not probe.ok:
            from omwizard.remote import RemoteError

            raise RemoteError(
                node.name,
                f"{zoneinfo} does not exist on the node",
                "install the tzdata package on the node, then run apply again",
            )
        if finding.data.get("source") == "timedatectl":
            await ctx.change_command(
                node,
                ["timedatectl", "set-timezone", want],
                ["timedatectl", "set-timezone", old] if old else None,
            )
            return
        old_target = f"/usr/share/zoneinfo/{old}" if old else None
        await ctx.change_command(
            node,
            ["ln", "-sfn", zoneinfo, "/etc/localtime"],
            ["ln", "-sfn", old_target, "/etc/localtime"] if old_target else None,
        )
        await ctx.edit_file(node, "/etc/timezone", lambda _text: want + "\n")


STEPS: list[Step] = [SshStep(), OmInstalledStep(), TimezoneStep()]
