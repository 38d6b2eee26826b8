"""OM nodes configuration: each OpenMeetings node's hazelcast.xml, as the documentation asks.

The documentation's four edits (instance-name, server.url, remove the disabled blocks,
un-comment the network block) all land in one file and only make sense together: a file with
a unique instance-name but no join method is as alone as before. So they are one step,
`hazelcast-xml`, whose check lists each edit still missing and whose apply is one journaled
file edit (one backup, one undo). It is preceded by `unique-names`, which refuses to write
anything while the planned instance names would clash (OpenMeetings keys its servers by them).
"""

from __future__ import annotations

from omwizard.configs import hazelcast
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.nodes import (
    HAZELCAST_XML,
    HazelcastState,
    InstanceName,
    name_clashes,
    settings_for,
)
from omwizard.om.layout import OmLayout
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError

HAZELCAST_DOC = """In the file /opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml:
- Set instance-name for each server to unique value
- Set server.url for each server to full public URL of this server (please NOTE using of \
numeric IP address might broke HTTPS))
- Comment out/delete following blocks: <network><join> (auto-detection, multicast, tcp-ip, \
aws all enabled="false") and <property name="hazelcast.discovery.enabled">false</property>
- Un-comment following block (ensure it contains valid parameters): <network><join><multicast \
enabled="true"> multicast-group 224.0.0.0, multicast-port 54327, multicast-time-to-live 32, \
multicast-timeout-seconds 2 ... <interfaces enabled="true"><interface>192.168.1.*</interface>
omwizard also sets a cluster-name unique to this cluster (Hazelcast 4+), so two clusters on \
one LAN never merge, and with network.join tcp-ip writes a <tcp-ip> member list instead."""


# -- each step's words, shown beside it (STEPS, at the end, gives each step its own) -------

DOC_UNIQUE_NAMES = (
    "Set instance-name for each server to unique value. omwizard uses each node's name "
    "from the plan, and checks they are unique before any hazelcast.xml is written."
)


class NodesStep(Step):
    """The nodes section's steps."""

    section = "nodes"


class UniqueNamesStep(NodesStep):
    reads = frozenset({R.HAZELCAST})
    cluster_wide = True
    only_om = True
    files = (HAZELCAST_XML,)

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        planned = [n.name for n in ctx.plan.om_nodes]
        clashes = name_clashes(planned)
        path = OmLayout(ctx.plan.cluster.om_home).hazelcast_xml

        async def now(node: Node) -> str | None:
            try:
                text = await ctx.read_text(node, path)
                return None if text is None else hazelcast.inspect(text).instance_name
            except Exception:  # noqa: BLE001 - unreadable or broken: hazelcast-xml reports it
                return None

        current: dict[str, Finding] = {}
        for node in nodes:
            if clashes:
                current[node.name] = Finding.failed(
                    f"planned instance names clash: {', '.join(clashes)}",
                    "give every OM node a distinct name in the plan (names differing only in "
                    "case are confusing in Administration > Connections)",
                )
                continue
            have = await now(node)
            shown = f"now {have!r}" if have else "now unset"
            current[node.name] = Finding.ok(
                f"will be {node.name!r} ({shown}); unique among {', '.join(planned)}",
                data=InstanceName(have),
            )
        return current


class HazelcastXmlStep(NodesStep):
    reads = frozenset({R.HAZELCAST, R.LINKS})
    writes = frozenset({R.HAZELCAST})
    only_om = True
    files = (HAZELCAST_XML,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        path = OmLayout(ctx.plan.cluster.om_home).hazelcast_xml
        settings = settings_for(ctx.plan, node)
        text = await ctx.read_text(node, path)
        if text is None:
            return Finding.failed(
                f"{path} does not exist",
                "install OpenMeetings on this node (preflight.om-installed), or set "
                "cluster.om_home to where it is",
            )
        try:
            missing = hazelcast.problems(text, settings)
        except Exception as exc:  # noqa: BLE001 - lxml's parse errors are many types
            return Finding.failed(
                f"{path} is not well-formed XML: {exc}",
                "fix the file by hand (or restore OpenMeetings' original), then check again",
            )
        warns = hazelcast.warnings(settings, text)
        evidence = [f"{path}: " + ("; ".join(missing) if missing else "as planned")]
        evidence += [f"warning: {w}" for w in warns]
        data = HazelcastState(tuple(missing), tuple(warns))
        if not missing:
            detail = f"instance-name {node.name}, cluster-name {settings.cluster_name}, " \
                     f"join {settings.join}"
            if warns:
                detail += f" (warning: {warns[0]})"
            return Finding.ok(detail, *evidence, data=data)
        return Finding.needs(
            f"{len(missing)} to change: {missing[0]}" + (" ..." if len(missing) > 1 else ""),
            "omwizard edits hazelcast.xml as the documentation says (the diff is shown; the "
            "original is backed up), then OM must be restarted (verify.restart)",
            *evidence,
            data=data,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        clashes = name_clashes([n.name for n in ctx.plan.om_nodes])
        if clashes:  # the plan loader refuses duplicates; this guards case-only clashes
            raise RemoteError(node.name, f"planned instance names clash: {', '.join(clashes)}",
                              "rename the nodes in the plan; nothing was written")
        path = OmLayout(ctx.plan.cluster.om_home).hazelcast_xml
        settings = settings_for(ctx.plan, node)

        def edit(text: str | None) -> str | None:
            return None if text is None else hazelcast.transform(text, settings)

        await ctx.edit_file(node, path, edit)


STEPS: list[Step] = [
    UniqueNamesStep("unique-names", "Unique instance names", DOC_UNIQUE_NAMES),
    HazelcastXmlStep(
        "hazelcast-xml", "hazelcast.xml: instance-name, server.url, network", HAZELCAST_DOC
    ),
]
