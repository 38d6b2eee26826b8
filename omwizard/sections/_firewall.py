"""The firewall step of the network section (beyond the documentation, which names no port).

Per node: what filters packets (nftables, iptables, firewalld, ufw or nothing) and whether
every path the cluster needs into this node passes (facts/firewall.py decides). With
`network.firewall: manage` omwizard opens exactly those paths for exactly the cluster's
addresses in the tool the node already uses, persisted the way that tool persists; undo
(journal) removes exactly omwizard's rules. It never disables a firewall nor opens a port to
the world. `check` (default) only reports; `off` skips the step.
"""

from __future__ import annotations

import dataclasses

from omwizard.configs import firewall as rules
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.firewall import (
    FIREWALLD_STATE,
    IPTABLES_FILES,
    IPTABLES_RULES,
    NFT_FILES,
    NFT_RULESET,
    UFW_STATUS,
    FirewallState,
    FirewallView,
    PathCheck,
    judge_firewall,
    persistence_gaps,
)
from omwizard.facts.firewall_firewalld import Firewalld, parse_rich
from omwizard.facts.firewall_iptables import ipt_ours
from omwizard.facts.firewall_nft import nft_ours
from omwizard.facts.firewall_paths import BLOCKED, required_openings, wanted_atoms
from omwizard.facts.firewall_ufw import Ufw, parse_ufw, ufw_atoms
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError

DOC_FIREWALL = (
    "Beyond the documentation, which names no port: the members talk on TCP 5701-5703 "
    "(Hazelcast), TCP 5636 (OpenJPA remote commits) and, joining by multicast, UDP 54327; the "
    "OM nodes reach the database port on the DB node and NFS on the storage node. omwizard "
    "reads each node's packet filter (nftables, iptables, firewalld, ufw) and says which "
    "port from which node is blocked; with network.firewall: manage it opens exactly those "
    "for exactly the cluster's addresses, in the tool the node uses, and rollback removes "
    "exactly its own rules."
)


def firewall_off(plan: Plan, _node: Node) -> str | None:
    return "network.firewall is off" if plan.network.firewall == "off" else None


def nothing_inbound(plan: Plan, node: Node) -> str | None:
    if not required_openings(plan, node):
        return "nothing of the cluster connects to this node"
    return None


def _line(p: PathCheck, node: Node) -> str:
    return f"{p.opening.describe(node.name)}: {p.verdict}" + (f" by {p.by}" if p.by else "")


class FirewallStep(Step):
    reads = frozenset({R.FIREWALL})
    writes = frozenset({R.FIREWALL})
    section = "network"
    skip_when = (firewall_off, nothing_inbound)
    facts = (NFT_RULESET, IPTABLES_RULES, FIREWALLD_STATE, UFW_STATUS)

    async def _view(self, ctx: StepContext, node: Node) -> FirewallView:
        return FirewallView(
            await ctx.fact(node, NFT_RULESET),
            await ctx.fact(node, IPTABLES_RULES),
            await ctx.fact(node, FIREWALLD_STATE),
            parse_ufw(await ctx.fact(node, UFW_STATUS), ctx.plan.cluster.name),
        )

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        plan, cluster = ctx.plan, ctx.plan.cluster.name
        openings = required_openings(plan, node)
        view = await self._view(ctx, node)
        state = judge_firewall(view, openings, cluster)
        manage = plan.network.firewall == "manage"
        if manage and (state.nft_chains or state.iptables):
            files = await ctx.read_texts(node, [*NFT_FILES, *IPTABLES_FILES])
            state = dataclasses.replace(
                state, unpersisted=persistence_gaps(state, files, openings, cluster))
        evidence = [await ctx.fact_evidence(node, f) for f in self.facts]
        tools = ", ".join(state.tools) or "nothing"
        blocked, unknown = state.blocked, state.unknown
        if manage and state.reload_loses and (blocked or unknown or state.stale):
            return Finding.failed(
                f"firewalld on {node.name} runs a zone {state.zone} that differs from its "
                "permanent configuration; omwizard's ipset is created permanently and needs a "
                "reload, which would drop those runtime-only changes",
                "keep them (`firewall-cmd --runtime-to-permanent`) or drop them "
                "(`firewall-cmd --reload`), then apply again", *evidence, data=state)
        if blocked:
            listed = "; ".join(_line(p, node) for p in blocked)
            detail = f"{len(blocked)} path(s) into {node.name} blocked ({tools}): {listed}"
            if manage:
                return Finding.needs(detail, "omwizard opens exactly these for the cluster's "
                                     "addresses (network.firewall: manage)", *evidence,
                                     data=state)
            return Finding.failed(
                detail, f"open these ports on {node.name} for exactly these source addresses "
                "in its firewall, or set network.firewall: manage and omwizard does it "
                "(never to the world; rollback removes its rules)", *evidence, data=state)
        if state.stale:
            detail = (f"omwizard's rules in {', '.join(state.stale)} on {node.name} are not "
                      "the plan's nodes any more (a node was added or removed)")
            if state.stale_sources:
                detail += (f": they still open to {', '.join(state.stale_sources)}, no longer "
                           "in the plan")
            if manage:
                return Finding.needs(detail, "omwizard replaces them by the plan's", *evidence,
                                     data=state)
            return Finding.failed(detail, "set network.firewall: manage so omwizard updates "
                                  "them, or edit them by hand", *evidence, data=state)
        if manage and unknown:
            listed = "; ".join(_line(p, node) for p in unknown)
            return Finding.needs(
                f"{len(unknown)} path(s) into {node.name} cannot be judged from {tools}: "
                f"{listed}", "omwizard adds its own accept rules so they surely pass",
                *evidence, data=state)
        if manage and state.unpersisted:
            return Finding.needs(
                f"omwizard's rules are live on {node.name} but not in "
                f"{', '.join(state.unpersisted)}: lost at the next reboot",
                "omwizard writes them there", *evidence, data=state)
        if not state.tools:
            return Finding.ok(f"nothing filters packets on {node.name}", *evidence, data=state)
        note = ""
        if unknown:
            note = (f"; {len(unknown)} path(s) cannot be judged from the rules "
                    f"({', '.join(sorted({p.by for p in unknown}))}): preflight.ports "
                    "probes them live")
        passing = len(state.paths) - len(unknown)
        return Finding.ok(f"{tools}: {passing} cluster path(s) into {node.name} pass{note}",
                          *evidence, data=state)

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        seen = finding.typed(FirewallState)
        plan, cluster = ctx.plan, ctx.plan.cluster.name
        openings = required_openings(plan, node)
        wanted = sorted(wanted_atoms(openings))
        view = await self._view(ctx, node)
        if view.firewalld is not None and ("firewalld" in seen.tools
                                           or "firewalld" in seen.stale):
            await _firewalld(ctx, node, view.firewalld, wanted, cluster)
            return
        if view.ufw is not None and ("ufw" in seen.tools or "ufw" in seen.stale):
            await _ufw(ctx, node, view.ufw, wanted, cluster)
            return
        if view.nft is not None:
            before = nft_ours(view.nft, cluster)
            for fam, table, chain in seen.nft_chains:
                old = sorted(before.get(f"{fam} {table} {chain}", frozenset()))
                if old != wanted:
                    await ctx.change_command(
                        node, ["sh", "-c", rules.nft_set_script(wanted, fam, table, chain,
                                                                 cluster)],
                        ["sh", "-c", rules.nft_set_script(old, fam, table, chain, cluster)],
                        remedy=f"check `nft list chain {fam} {table} {chain}` on {node.name}")
                def persist_nft(text: str | None, where: tuple[str, str, str] = (fam, table, chain)
                                ) -> str | None:
                    return rules.nft_persist(text, wanted, *where, cluster)

                for path in NFT_FILES:  # a no-op where the file is absent or already right
                    await ctx.edit_file(node, path, persist_nft)
        if view.iptables is not None and seen.iptables:
            old = sorted(ipt_ours(view.iptables, cluster))
            if old != wanted:
                await ctx.change_command(
                    node, ["sh", "-c", rules.ipt_set_script(wanted, cluster)],
                    ["sh", "-c", rules.ipt_set_script(old, cluster)],
                    remedy=f"check `iptables -S INPUT` on {node.name}")
            def persist(text: str | None) -> str | None:
                return rules.ipt_persist(text, wanted, cluster)

            for path in IPTABLES_FILES:  # a no-op where the file is absent or already right
                await ctx.edit_file(node, path, persist)


Atom = tuple[str, str, int, int]


async def _ufw(ctx: StepContext, node: Node, ufw: Ufw, wanted: list[Atom], cluster: str
               ) -> None:
    """Delete omwizard's ufw rules that open more than the plan wants, then prepend the missing
    ones (in reverse, so they read in order); ufw persists them in /etc/ufw/user.rules."""
    kept: set[Atom] = set()
    for rule in ufw.our_rules(cluster):
        atoms = ufw_atoms(rule)
        if atoms and atoms <= set(wanted):
            kept |= atoms
            continue
        for proto, src, ports in rules.ufw_groups(atoms):
            add, delete = rules.ufw_allow(proto, src, ports, cluster)
            await ctx.change_command(node, delete, add, remedy=f"check `ufw status` on {node.name}")
    missing = [a for a in wanted if a not in kept]
    for proto, src, ports in reversed(rules.ufw_groups(missing)):
        add, delete = rules.ufw_allow(proto, src, ports, cluster)
        await ctx.change_command(node, add, delete, remedy=f"check `ufw status` on {node.name}")


async def _firewalld(ctx: StepContext, node: Node, fw: Firewalld, wanted: list[Atom],
                     cluster: str) -> None:
    """omwizard's firewalld rules: the cluster's ipset holds the peers, one rich rule per port
    range takes its sources from it; each change live and permanent where it is missing."""
    ipset = rules.firewalld_ipset(cluster)
    sources = sorted({a[1] for a in wanted})
    ports = sorted({(a[0], a[2], a[3]) for a in wanted})
    if {(p, s, lo, hi) for s in sources for p, lo, hi in ports} != set(wanted):
        raise RemoteError(node.name, "omwizard's firewalld rules need one set of sources for "
                          "every port of a node", "report this plan to omwizard's authors")
    remedy = f"check `firewall-cmd --list-all` and `firewall-cmd --info-ipset={ipset}`"
    live, kept = fw.ipset, fw.permanent_ipset
    live_rules, kept_rules = fw.rich_rules, fw.permanent
    if kept is None:
        new, delete = rules.firewalld_new_ipset(ipset, cluster)
        await ctx.change_command(node, new, delete, remedy=remedy)
        live, kept, live_rules = (), (), kept_rules  # the reload made permanent live
    elif live is None:
        await ctx.change_command(node, ["firewall-cmd", "--reload"], None, remedy=remedy,
                                 undo_text="the reload only made the permanent ipset live")
        live, live_rules = kept, kept_rules
    entries = {"runtime": set(live or ()), "permanent": set(kept or ())}
    for address in sorted(set(sources) | entries["runtime"] | entries["permanent"]):
        want = address in sources
        sides = [side for side, have in entries.items() if (address in have) != want]
        if sides:
            add, remove = rules.firewalld_entry(ipset, address, sides)
            await ctx.change_command(node, *((add, remove) if want else (remove, add)),
                                     remedy=remedy)
    texts = [rules.firewalld_rich(ipset, *p) for p in ports]
    present = {"runtime": set(live_rules), "permanent": set(kept_rules)}
    ours = {r for r in (*live_rules, *kept_rules) if parse_rich(r).ipset == ipset}
    for rich in [*texts, *sorted(ours - set(texts))]:
        want = rich in texts
        sides = [side for side, have in present.items() if (rich in have) != want]
        if sides:
            add, remove = rules.firewalld_rule(fw.zone, rich, sides)
            await ctx.change_command(node, *((add, remove) if want else (remove, add)),
                                     remedy=remedy)


__all__ = ["BLOCKED", "DOC_FIREWALL", "FirewallStep"]
