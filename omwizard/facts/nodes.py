"""The nodes section's decisions: what each OM node's hazelcast.xml must say, from the plan."""

from __future__ import annotations

from dataclasses import dataclass

from omwizard.configs import hazelcast
from omwizard.facts.base import Files, StepData
from omwizard.om.layout import OmLayout
from omwizard.plan.model import Node, Plan


@dataclass(frozen=True)
class InstanceName(StepData):
    """The instance-name a node's hazelcast.xml has now (None: unset or unreadable)."""

    kind = "instance-name"
    now: str | None


@dataclass(frozen=True)
class HazelcastState(StepData):
    """What a node's hazelcast.xml still lacks, and the warnings about the plan's settings."""

    kind = "hazelcast-xml"
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def cluster_name(plan: Plan) -> str:
    """Hazelcast's cluster-name: the plan's network.cluster_name, else omwizard-<cluster>."""
    return plan.network.cluster_name or f"omwizard-{plan.cluster.name}"


def settings_for(plan: Plan, node: Node) -> hazelcast.HazelcastSettings:
    """What this node's hazelcast.xml must say, from the plan."""
    net = plan.network
    return hazelcast.HazelcastSettings(
        instance_name=node.name,
        server_url=node.server_url,
        cluster_name=cluster_name(plan),
        join=net.join,
        multicast_group=net.multicast_group,
        multicast_port=net.multicast_port,
        multicast_ttl=net.multicast_ttl,
        multicast_timeout=net.multicast_timeout,
        interfaces=tuple(net.interfaces),
        members=tuple(n.address for n in plan.om_nodes) if net.join == "tcp-ip" else (),
    )


def name_clashes(names: list[str]) -> list[str]:
    """Instance names that clash (Hazelcast compares exactly; people read case-blind)."""
    seen: dict[str, str] = {}
    clashes = []
    for name in names:
        key = name.lower()
        if key in seen:
            clashes.append(f"{seen[key]} / {name}")
        else:
            seen[key] = name
    return clashes


# the node's hazelcast.xml (unique-names and hazelcast-xml read it)
HAZELCAST_XML = Files(
    "hazelcast_xml", lambda plan, _node: [OmLayout(plan.cluster.om_home).hazelcast_xml]
)
