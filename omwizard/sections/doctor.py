"""The doctor: read-only checks for the failures the documentation never mentions (issue 18).

Not one of the page's sections (`omwizard check` keeps meaning those): `omwizard doctor PLAN`
runs these steps through the same engine, so results, JSON and the TUI grid are the same shape.
Every step only checks (none has an apply); a finding's typed data (`Diagnosis`) names each
cause, the node, and the section whose `apply` fixes it. Each node is read once
(`facts.doctor.SNAPSHOT`); the judgements are the pure functions of facts/doctor.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
from collections.abc import Callable
from urllib.parse import urlsplit

from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts import doctor as dx
from omwizard.facts.doctor import SNAPSHOT, Diagnosis, NodeView, Problem, Problems
from omwizard.plan.model import Node

VIEWS = "doctor.views"


async def views(ctx: StepContext, nodes: list[Node]) -> dict[str, NodeView]:
    """The nodes' matrix rows, built once per run from their snapshots (probe results of
    later steps are added to the same rows)."""
    cache: dict[str, NodeView] = ctx.shared.setdefault(VIEWS, {})
    for node in nodes:
        if node.name not in cache:
            snap = await ctx.fact(node, SNAPSHOT)
            # setdefault: a step checked at once may have built (and added to) it meanwhile
            cache.setdefault(node.name, dx.node_view(node.name, node.address, snap,
                                                     ctx.plan.cluster.om_home))
    return {n.name: cache[n.name] for n in nodes}


def _update(ctx: StepContext, view: NodeView) -> None:
    ctx.shared.setdefault(VIEWS, {})[view.node] = view


def finding(view: NodeView, problems: list[Problem], healthy: str) -> Finding:
    """ok with the node's row, or needs-change naming every cause, why, fix and evidence."""
    if not view.installed:
        return Finding.failed(f"no OpenMeetings on {view.node} (no hazelcast.xml under om_home)",
                              "set cluster.om_home to where OpenMeetings is installed",
                              data=Diagnosis((), view))
    data = Diagnosis(tuple(p.cause for p in problems), view)
    if not problems:
        return Finding.ok(healthy, data=data)
    detail = "; ".join(p.what for p in problems)
    fixes = []
    for p in problems:
        how = "apply can fix it" if p.cause.apply_section else "fix by hand"
        fixes.append(f"{p.fix} ({how})")
    evidence = [f"why: {p.why}" for p in problems]
    evidence += [e for p in problems for e in p.evidence]
    return Finding.needs(detail, "; ".join(fixes), *evidence, data=data)


class DoctorStep(Step):
    """A doctor step on each OM node alone."""

    section = "doctor"
    only_om = True
    om_reason = "not an OpenMeetings node (role om): nothing of OpenMeetings to diagnose"
    facts = (SNAPSHOT,)
    healthy = "nothing wrong found"

    def judge(self, ctx: StepContext, view: NodeView) -> list[Problem]:
        raise NotImplementedError

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        view = (await views(ctx, [node]))[node.name]
        return finding(view, self.judge(ctx, view) if view.installed else [], self.healthy)


class ClusterDoctorStep(DoctorStep):
    """A doctor step that compares the nodes (the matrix's columns)."""

    cluster_wide = True

    def judge_all(self, ctx: StepContext, rows: dict[str, NodeView]) -> Problems:
        raise NotImplementedError

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        rows = await views(ctx, nodes)
        installed = {n: v for n, v in rows.items() if v.installed}
        problems = self.judge_all(ctx, installed) if installed else {}
        return {n: finding(v, problems.get(n, []), self.healthy_for(v)) for n, v in rows.items()}

    def healthy_for(self, view: NodeView) -> str:
        return self.healthy


class ComparedStep(ClusterDoctorStep):
    """A doctor step whose judgement is one pure comparison of the nodes' rows
    (facts/doctor.py); `healthy` words the ok line of a node it found nothing wrong on."""

    def __init__(self, name: str, title: str, doc: str,
                 judge: Callable[[dict[str, NodeView]], Problems],
                 healthy: Callable[[NodeView], str]) -> None:
        super().__init__(name, title, doc)
        self._judge, self._healthy = judge, healthy

    def judge_all(self, ctx: StepContext, rows: dict[str, NodeView]) -> Problems:
        return self._judge(rows)

    def healthy_for(self, view: NodeView) -> str:
        return self._healthy(view)


class JoinStep(DoctorStep):
    healthy = "a join method is enabled"

    def judge(self, ctx: StepContext, view: NodeView) -> list[Problem]:
        return dx.judge_join(view)


class InterfacesStep(DoctorStep):
    healthy = "the interface pattern picks the cluster address"

    def judge(self, ctx: StepContext, view: NodeView) -> list[Problem]:
        return dx.judge_interfaces(view)


def url_probe_parts(url: str) -> dict[str, str]:
    """From the node itself: the HTTP status of server.url's health service, and for https
    the certificate's names."""
    q = shlex.quote
    health = url.rstrip("/") + "/services/info/health"
    parts = {"answer": f"curl -sS -k -o /dev/null -w '%{{http_code}}' --max-time 5 {q(health)} "
                       "2>&1; true"}
    split = urlsplit(url)
    if split.scheme == "https" and split.hostname:
        host, port = split.hostname, split.port or 443
        parts["cert"] = (f"echo | timeout 6 openssl s_client -connect {q(f'{host}:{port}')} "
                         f"-servername {q(host)} 2>/dev/null | openssl x509 -noout -subject "
                         "-ext subjectAltName 2>/dev/null; true")
    return parts


def parse_answer(text: str) -> str:
    """curl's `-w %{http_code}` (with stderr): "200", or "no answer: <error>"."""
    text = text.strip()
    code = text[-3:]
    if code.isdigit() and code != "000":
        return code
    return "no answer: " + (text[:-3].strip() or "connection failed")[:200]


class ServerUrlStep(DoctorStep):
    healthy = "server.url names this node and answers"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        view = (await views(ctx, [node]))[node.name]
        if view.installed and view.server_url and dx.url_host(view.server_url):
            got = await ctx.run_parts(node, url_probe_parts(view.server_url), sudo=False)
            view = dataclasses.replace(
                view, url_answer=parse_answer(got["answer"].stdout),
                cert_names=dx.parse_cert_names(got["cert"].stdout) if "cert" in got else ())
            _update(ctx, view)
        others = {n.name: {n.address, n.host, *([dx.url_host(n.server_url)] if n.server_url
                                               else [])} - {None}
                  for n in ctx.plan.om_nodes}
        names: dict[str, set[str]] = {k: {str(x) for x in v} for k, v in others.items()}
        problems = dx.judge_server_url(view, names) if view.installed else []
        return finding(view, problems, self.healthy)


class LiveJvmStep(DoctorStep):
    healthy = "the running JVM has what the configuration says"

    def judge(self, ctx: StepContext, view: NodeView) -> list[Problem]:
        return dx.judge_live_jvm(view, ctx.plan.storage.path)


class OverridesStep(DoctorStep):
    healthy = "nothing overrides OpenMeetings' hazelcast.xml"

    def judge(self, ctx: StepContext, view: NodeView) -> list[Problem]:
        return dx.judge_overrides(view, ctx.plan.cluster.om_home)


class PortsStep(ClusterDoctorStep):
    healthy = (f"TCP {dx.HAZELCAST_PORT} and {dx.OPENJPA_PORT} reachable from the other "
               "nodes")

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        rows = await views(ctx, nodes)
        installed = [n for n in nodes if rows[n.name].installed]
        addresses = {n.name: n.address for n in installed}

        async def probe(node: Node) -> tuple[str, dict[str, dict[str, str]]]:
            targets = [a for name, a in addresses.items() if name != node.name]
            if not targets:
                return node.name, {}
            got = await ctx.run_parts(node, {
                "hazelcast": dx.port_probe(targets),
                "openjpa": dx.port_probe(targets, dx.OPENJPA_PORT)}, sudo=False, timeout=60)
            return node.name, {part: dx.parse_port_probe(r.stdout) for part, r in got.items()}

        seen = dict(await asyncio.gather(*(probe(n) for n in installed)))
        running = {n: v.running for n, v in rows.items()}
        problems = dx.judge_ports({n: s.get("hazelcast", {}) for n, s in seen.items()},
                                  addresses, running)
        for node, found in dx.judge_openjpa_port(
                {n: s.get("openjpa", {}) for n, s in seen.items()}, addresses).items():
            problems.setdefault(node, []).extend(found)
        return {n: finding(v, problems.get(n, []), self.healthy) for n, v in rows.items()}


class MatrixStep(ClusterDoctorStep):
    """The node-by-node matrix (every row, with what the probes of this run added)."""

    after = ("doctor.server-url",)  # the step whose probe adds to the rows (_update)

    def judge_all(self, ctx: StepContext, rows: dict[str, NodeView]) -> Problems:
        return {}

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        await views(ctx, nodes)
        rows = {n.name: ctx.shared[VIEWS][n.name] for n in nodes}
        return {n: finding(v, [], self.healthy_for(v)) for n, v in rows.items()}

    def healthy_for(self, view: NodeView) -> str:
        return (f"OM {view.om_version or '?'}, Hazelcast {view.hazelcast_version or '?'}, "
                f"{view.instance_name or '-'}, {view.server_url or '-'}")


DOC = "Read-only: {what} (not in the documentation; see `omwizard doctor`)."

STEPS: list[Step] = [
    ComparedStep("versions", "Same OpenMeetings and Hazelcast everywhere",
                 DOC.format(what="OpenMeetings releases and Hazelcast jars agree between nodes "
                            "(Hazelcast refuses members of another minor version)"),
                 dx.judge_versions,
                 lambda v: (f"OpenMeetings {v.om_version or '?'}, Hazelcast "
                            f"{v.hazelcast_version or '?'} as the others")),
    JoinStep("join", "A join method is enabled",
             DOC.format(what="hazelcast.xml enables a join method (OM 4.0.1+ ships all off)")),
    InterfacesStep("interfaces", "The interface pattern picks the cluster address",
                   DOC.format(what="<interfaces> matches this node's cluster address, not "
                              "nothing, not Docker's bridge, not IPv6")),
    ComparedStep("identity", "Unique instance-name, equal to the name attribute",
                 DOC.format(what="instance-names are set, unique, and equal to the member "
                            "attribute name"),
                 dx.judge_identity,
                 lambda v: f"instance-name {v.instance_name!r}, unique, as its name attribute"),
    ComparedStep("cluster-name", "One cluster-name of its own",
                 DOC.format(what="one cluster-name, not Hazelcast's default 'dev'"),
                 dx.judge_cluster_name,
                 lambda v: f"cluster-name {v.cluster_name!r} as the others"),
    ServerUrlStep("server-url", "server.url names this node and answers",
                  DOC.format(what="server.url is this node's, answers, and its certificate "
                             "fits")),
    LiveJvmStep("live-jvm", "The running JVM has the configured options",
                DOC.format(what="OpenJPA's serialization lists (CVE-2024-54676) and DATA_DIR "
                           "are in the running process, not only in a file")),
    OverridesStep("overrides", "Nothing overrides hazelcast.xml",
                  DOC.format(what="no stray hazelcast.xml where OM starts, no "
                             "-Dhazelcast.config naming another file")),
    ComparedStep("database", "One database, reachable",
                 DOC.format(what="every node's persistence.xml names the same database; the "
                            "log has no \"DB seems to be down\""),
                 dx.judge_database,
                 lambda v: f"database {v.db_url or '?'} as the others; no database error in "
                           "the log"),
    ComparedStep("data-dir", "One DATA_DIR", DOC.format(what="every node uses the same "
                                                         "DATA_DIR"),
                 dx.judge_data_dir,
                 lambda v: f"DATA_DIR {v.data_dir_live or v.data_dir_configured or '(default)'}"),
    ComparedStep("kurento", "A Kurento server and kuid per node",
                 DOC.format(what="no two nodes share a Kurento media server or a kurento.kuid"),
                 dx.judge_kurento,
                 lambda v: f"Kurento {v.kurento_url}, kuid {v.kuid}: its own" if v.kurento_url
                 else "no Kurento settings found (openmeetings.properties)"),
    PortsStep("ports", "Hazelcast's and OpenJPA's ports between the nodes",
              DOC.format(what="TCP 5701 (Hazelcast) and 5636 (OpenJPA's remote commits) of "
                         "each node are reachable from the others")),
    ComparedStep("members", "Every member sees the others",
                 DOC.format(what="Hazelcast's latest member list in each node's log"),
                 dx.judge_members,
                 lambda v: f"sees {', '.join(v.members_seen) or 'no one yet'}" if v.running
                 else "not running (see doctor.live-jvm)"),
    MatrixStep("matrix", "The nodes side by side",
               DOC.format(what="each node's versions, names, URLs, database, DATA_DIR, live "
                          "JVM flags, Kurento and members")),
]
