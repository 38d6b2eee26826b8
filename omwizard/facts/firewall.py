"""The firewall between the nodes: what filters packets on a node, and whether the cluster's
own traffic passes it.

Read (declared facts, one round trip per node): `nft -j list ruleset`, `iptables-save`,
firewalld's default zone, services and omwizard's ipset, `ufw status verbose`, and which
persistence files exist. Judged (pure): every path the cluster needs INTO this node
(`required_openings`) is run through the node's input chains (ufw's rules in order, firewalld's
zone) as a new connection from the peer's address: pass, blocked (with the chain, rule or
default that drops it) or unknown (a rule omwizard cannot evaluate: a named set, an interface,
a rate limit). omwizard's own rules carry the comment `omwizard:<cluster>` (`tag`; firewalld:
their source is the cluster's ipset), so they are recognised, compared with what the plan
wants now (a node added or removed) and removed exactly.

This module holds the facts and the judgement; each tool's reader and walker is its own module
(firewall_nft, firewall_iptables, firewall_firewalld, firewall_ufw) over firewall_paths (the
paths to open and the packet every walker is asked about).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omwizard.configs.firewall import firewalld_ipset, ipt_persist, nft_persist
from omwizard.facts.base import Fact, StepData
from omwizard.facts.firewall_firewalld import (
    Firewalld,
    firewalld_ours,
    firewalld_verdict,
    has_firewalld_ours,
    parse_firewalld,
)
from omwizard.facts.firewall_iptables import (
    IptRuleset,
    has_ipt_ours,
    ipt_ours,
    ipt_verdict,
    parse_iptables_save,
)
from omwizard.facts.firewall_nft import (
    NftRuleset,
    nft_blocking_chains,
    nft_ours,
    nft_verdict,
    parse_nft,
)
from omwizard.facts.firewall_paths import BLOCKED, PASS, UNKNOWN, Opening, wanted_atoms
from omwizard.facts.firewall_ufw import Ufw, ufw_verdict

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

NFT_FILES = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
IPTABLES_FILES = ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables")


# -- the facts ----------------------------------------------------------------------------------


NFT_RULESET: Fact[NftRuleset | None] = Fact(
    "nft_ruleset",
    lambda _p, _n: "if command -v nft >/dev/null 2>&1; then nft -j list ruleset; "
                   "else echo NFT-ABSENT; fi",
    parse_nft,
)
IPTABLES_RULES: Fact[IptRuleset | None] = Fact(
    "iptables_rules",
    lambda _p, _n: "if command -v iptables-save >/dev/null 2>&1; then iptables-save 2>/dev/null;"
                   " else echo IPTABLES-ABSENT; fi; true",
    parse_iptables_save,
)
def _firewalld_fact(plan: Plan, _node: Node) -> str:
    ipset = shlex.quote(f"--info-ipset={firewalld_ipset(plan.cluster.name)}")
    return (
        "if command -v firewall-cmd >/dev/null 2>&1; then export LC_ALL=C; "
        "s=$(firewall-cmd --state 2>&1); printf '== state\\n%s\\n' \"$s\"; "
        "if [ \"$s\" = running ]; then "  # installed but stopped: nothing more to read
        "echo '== runtime'; firewall-cmd --list-all 2>&1; "
        "echo '== permanent'; firewall-cmd --permanent --list-all 2>&1; "
        f"echo '== ipset'; firewall-cmd {ipset} 2>&1; "
        f"echo '== permanent ipset'; firewall-cmd --permanent {ipset} 2>&1; "
        "echo '== services'; for s in $(firewall-cmd --list-services 2>/dev/null); do "
        "firewall-cmd --info-service=\"$s\" 2>&1; done; fi; "
        "else echo FIREWALLD-ABSENT; fi; true")


FIREWALLD_STATE: Fact[Firewalld | None] = Fact("firewalld_state", _firewalld_fact,
                                               parse_firewalld)


def _ufw_fact(plan: Plan, _node: Node) -> str:
    return ("if command -v ufw >/dev/null 2>&1; then LC_ALL=C ufw status verbose 2>&1; "
            "else echo UFW-ABSENT; fi; true")


UFW_STATUS: Fact[str] = Fact("ufw_status", _ufw_fact, lambda out: out)


# -- the judgement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PathCheck:
    """One required path into the node and what the node's firewall does with it."""

    opening: Opening
    verdict: str  # pass | blocked | unknown
    by: str = ""  # the chain (or tool) that decided


@dataclass(frozen=True)
class FirewallView:
    """Everything read of one node's packet filters."""

    nft: NftRuleset | None
    iptables: IptRuleset | None
    firewalld: Firewalld | None
    ufw: Ufw | None

    @property
    def tools(self) -> tuple[str, ...]:
        """What filters packets here, in the order omwizard would manage it."""
        if self.firewalld is not None and self.firewalld.active:
            return ("firewalld",)
        if self.ufw is not None and self.ufw.active:
            return ("ufw",)
        out = []
        if self.nft is not None and self.nft.input_chains():
            out.append("nftables")
        if self.iptables is not None and self.iptables.filters_input:
            out.append("iptables")
        return tuple(out)


@dataclass(frozen=True)
class FirewallState(StepData):
    """The firewall check's judgement: the tools that filter, each required path's verdict,
    where omwizard's rules go (nft chains), whether its rules are stale (a node added or
    removed since) and which persistence files lack them."""

    kind = "network-firewall"
    tools: tuple[str, ...]
    paths: tuple[PathCheck, ...]
    nft_chains: tuple[tuple[str, str, str], ...] = ()  # (family, table, chain) to open in
    stale: tuple[str, ...] = ()  # tools holding omwizard rules that differ from the plan
    unpersisted: tuple[str, ...] = ()  # persistence files whose omwizard block is out of date
    zone: str = ""
    iptables: bool = False  # omwizard's rules belong in iptables INPUT (needed or there)
    stale_sources: tuple[str, ...] = ()  # addresses omwizard's rules open to, not in the plan
    # firewalld: omwizard's ipset must be created (permanent, then a reload) while the running
    # zone differs from the permanent one: the reload would drop those runtime-only changes
    reload_loses: bool = False

    @property
    def blocked(self) -> tuple[PathCheck, ...]:
        return tuple(p for p in self.paths if p.verdict == BLOCKED)

    @property
    def unknown(self) -> tuple[PathCheck, ...]:
        return tuple(p for p in self.paths if p.verdict == UNKNOWN)


def judge_firewall(view: FirewallView, openings: tuple[Opening, ...], cluster: str
                   ) -> FirewallState:
    """Each required path through every tool that filters (blocked in one: blocked)."""
    tools = view.tools
    wanted = wanted_atoms(openings)
    paths = []
    for o in openings:
        verdict, by = PASS, ""
        for tool in tools:
            got, at = _tool_verdict(view, tool, o, cluster)
            if got == BLOCKED:
                verdict, by = BLOCKED, at
                break
            if got == UNKNOWN and verdict == PASS:
                verdict, by = UNKNOWN, at
        paths.append(PathCheck(o, verdict, by))
    stale: list[str] = []
    ours_atoms: set[tuple[str, str, int, int]] = set()
    chains: list[tuple[str, str, str]] = []
    if "nftables" in tools and view.nft is not None:
        ours = nft_ours(view.nft, cluster)
        if any(atoms != wanted for atoms in ours.values()):
            stale.append("nftables")
        ours_atoms.update(*ours.values())
        chains = [(c.family, c.table, c.name) for c in view.nft.input_chains()
                  if c.where in ours or c in nft_blocking_chains(view.nft, openings)]
    if view.iptables is not None and has_ipt_ours(view.iptables, cluster):
        ours_atoms |= ipt_ours(view.iptables, cluster)
        if ipt_ours(view.iptables, cluster) != wanted:
            stale.append("iptables")
    if view.ufw is not None and view.ufw.ours:
        ours_atoms |= view.ufw.ours
        if view.ufw.ours != wanted:
            stale.append("ufw")
    fw = view.firewalld
    reload_loses = False
    if fw is not None and fw.active and has_firewalld_ours(fw, cluster):
        live, kept = firewalld_ours(fw, cluster), firewalld_ours(fw, cluster, permanent=True)
        ours_atoms |= live | kept
        if live != wanted or kept != wanted:
            stale.append("firewalld")
    if fw is not None and "firewalld" in tools and fw.ipset is None and not fw.in_sync:
        reload_loses = True
    ipt = view.iptables is not None and (
        has_ipt_ours(view.iptables, cluster)
        or ("iptables" in tools and any(ipt_verdict(view.iptables, o)[0] != PASS
                                        for o in openings)))
    zone = fw.zone if fw is not None else ""
    sources = {a[1] for a in wanted}
    gone = sorted({a[1] for a in ours_atoms} - sources)
    return FirewallState(tools, tuple(paths), tuple(chains), tuple(stale), (), zone, ipt,
                         tuple(gone), reload_loses)


def _tool_verdict(view: FirewallView, tool: str, o: Opening, cluster: str) -> tuple[str, str]:
    if tool == "nftables" and view.nft is not None:
        return nft_verdict(view.nft, o)
    if tool == "iptables" and view.iptables is not None:
        return ipt_verdict(view.iptables, o)
    if tool == "firewalld" and view.firewalld is not None:
        return firewalld_verdict(view.firewalld, o, cluster)
    if tool == "ufw" and view.ufw is not None:
        return ufw_verdict(view.ufw, o)
    return PASS, ""


def persistence_gaps(state: FirewallState, files: Mapping[str, str | None],
                     openings: Iterable[Opening], cluster: str) -> tuple[str, ...]:
    """The persistence files of the tools omwizard manages here whose omwizard block is not
    what the plan wants now (absent files, and files that do not define the table, are not
    gaps: there is nothing omwizard can persist into)."""
    wanted = sorted(wanted_atoms(openings))
    gaps = []
    for path in NFT_FILES:
        text = files.get(path)
        if text is None:
            continue
        for fam, table, chain in state.nft_chains:
            if nft_persist(text, wanted, fam, table, chain, cluster) != text:
                gaps.append(path)
                break
    if state.iptables:
        for path in IPTABLES_FILES:
            text = files.get(path)
            if text is not None and ipt_persist(text, wanted, cluster) != text:
                gaps.append(path)
    return tuple(gaps)
