"""omwizard's firewall rules, rendered for the tool a node already uses (pure text).

Every rule opens exactly one cluster path set: these sources, this protocol, these ports,
ACCEPT; never a port to the world. Rules carry the comment `omwizard:<cluster>` (nftables,
iptables, ufw) so they are found and removed exactly; firewalld rich rules, which have no
comment, take their sources from an ipset named for the cluster (`firewalld_ipset`). The "set
ours" scripts replace omwizard's rules in one chain by a new set (empty: remove them), so the
same script with the previous set is the undo.

Atoms are (proto, source address, first port, last port), the shape facts.firewall compares.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable

Atom = tuple[str, str, int, int]
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def tag(cluster: str) -> str:
    return f"omwizard:{cluster}"


def _safe(*names: str) -> None:
    for name in names:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a table/chain name omwizard writes rules into")


def groups(atoms: Iterable[Atom]) -> list[tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]]]:
    """(proto, sources, port ranges): sources that need the same ports share one rule."""
    by_src: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for proto, src, lo, hi in atoms:
        by_src.setdefault((proto, src), set()).add((lo, hi))
    by_ports: dict[tuple[str, tuple[tuple[int, int], ...]], list[str]] = {}
    for (proto, src), ports in sorted(by_src.items()):
        by_ports.setdefault((proto, tuple(sorted(ports))), []).append(src)
    return [(proto, tuple(srcs), ports) for (proto, ports), srcs in sorted(by_ports.items())]


def _ranges(ports: tuple[tuple[int, int], ...], sep: str) -> list[str]:
    return [str(lo) if lo == hi else f"{lo}{sep}{hi}" for lo, hi in ports]


# -- nftables -----------------------------------------------------------------------------------


def nft_rules(atoms: Iterable[Atom], family: str, table: str, chain: str,
              cluster: str) -> list[str]:
    """`insert rule` commands (nft -f syntax) for omwizard's rules in one chain."""
    _safe(family, table, chain)
    out = []
    for proto, srcs, ports in groups(atoms):
        out.append(
            f"insert rule {family} {table} {chain} ip saddr {{ {', '.join(srcs)} }} "
            f"{proto} dport {{ {', '.join(_ranges(ports, '-'))} }} accept "
            f'comment "{tag(cluster)}"')
    return out


def nft_set_script(atoms: Iterable[Atom], family: str, table: str, chain: str,
                   cluster: str) -> str:
    """Shell: in one nft transaction, delete omwizard's rules of the chain and insert these."""
    _safe(family, table, chain)
    where = f"{family} {table} {chain}"
    mark = shlex.quote(f'comment "{tag(cluster)}" # handle ')
    rules = nft_rules(atoms, family, table, chain, cluster)
    body = "".join(f"printf '%s\\n' {shlex.quote(r)}; " for r in rules)
    return (
        f"set -e; h=$(nft -a list chain {where} | grep -F -- {mark} | sed 's/.* # handle //'"
        "; true); "
        f"{{ for x in $h; do echo \"delete rule {where} handle $x\"; done; {body}true; }} "
        "| nft -f -"
    )


def _begin(cluster: str, where: str) -> str:
    return f"# {tag(cluster)} {where} begin (omwizard's rules; rollback removes them)"


def _end(cluster: str, where: str) -> str:
    return f"# {tag(cluster)} {where} end"


def declares_table(text: str, family: str, table: str) -> bool:
    """Whether an nftables file defines the table (so `insert rule` in it can load at boot)."""
    fam = r"(?:ip\s+)?" if family == "ip" else re.escape(family) + r"\s+"
    return re.search(rf"^\s*table\s+{fam}{re.escape(table)}\s*\{{", text, re.M) is not None


def nft_persist(text: str | None, atoms: Iterable[Atom], family: str, table: str, chain: str,
                cluster: str) -> str | None:
    """The nftables file with omwizard's block for this chain replaced (appended at the end,
    after the table it inserts into); None when the file is absent; unchanged when it does
    not define the table (the ruleset comes from elsewhere)."""
    if text is None:
        return None
    where = f"{family} {table} {chain}"
    kept = _drop_block(text, _begin(cluster, where), _end(cluster, where))
    rules = nft_rules(atoms, family, table, chain, cluster)
    if not declares_table(kept, family, table):
        return text
    if not rules:
        return kept
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return kept + "\n".join([_begin(cluster, where), *rules, _end(cluster, where)]) + "\n"


def _drop_block(text: str, begin: str, end: str) -> str:
    lines = text.splitlines(keepends=True)
    out, inside = [], False
    for line in lines:
        if line.rstrip("\n") == begin:
            inside = True
            continue
        if inside:
            if line.rstrip("\n") == end:
                inside = False
            continue
        out.append(line)
    return "".join(out)


# -- iptables ----------------------------------------------------------------------------------


def ipt_specs(atoms: Iterable[Atom], cluster: str) -> list[list[str]]:
    """One INPUT rule spec (argv after `-I INPUT 1`) per source and protocol."""
    out = []
    by: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for proto, src, lo, hi in atoms:
        by.setdefault((proto, src), []).append((lo, hi))
    for (proto, src), ports in sorted(by.items()):
        out.append(["-s", f"{src}/32", "-p", proto, "-m", "multiport", "--dports",
                    ",".join(_ranges(tuple(sorted(ports)), ":")), "-m", "comment",
                    "--comment", tag(cluster), "-j", "ACCEPT"])
    return out


def ipt_save_lines(atoms: Iterable[Atom], cluster: str) -> list[str]:
    """The same rules as `iptables-save` prints them (for rules.v4 / sysconfig/iptables)."""
    lines = []
    for spec in ipt_specs(atoms, cluster):
        words = [f'"{w}"' if w == tag(cluster) else w for w in spec]
        lines.append("-A INPUT " + " ".join(words))
    return lines


def ipt_set_script(atoms: Iterable[Atom], cluster: str) -> str:
    """Shell: delete omwizard's INPUT rules (by number, last first), insert these at the top
    in an order that leaves them as listed."""
    mark = shlex.quote(f"/* {tag(cluster)} */")
    inserts = "".join(f"iptables -I INPUT 1 {shlex.join(spec)}; "
                      for spec in reversed(ipt_specs(atoms, cluster)))
    return (
        "set -e; for n in $(iptables -L INPUT -n --line-numbers | grep -F -- "
        f"{mark} | awk '{{print $1}}' | sort -rn); do iptables -D INPUT \"$n\"; done; "
        f"{inserts}true"
    )


def ipt_persist(text: str | None, atoms: Iterable[Atom], cluster: str) -> str | None:
    """rules.v4 with omwizard's lines replaced, placed before the first INPUT rule of *filter
    (before its COMMIT when INPUT has none); unchanged without a *filter table."""
    if text is None:
        return None
    mark = tag(cluster)
    lines = [ln for ln in text.splitlines(keepends=True) if mark not in ln]
    ours = [ln + "\n" for ln in ipt_save_lines(atoms, cluster)]
    table, at = None, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("*"):
            table = s[1:]
        elif table == "filter" and (s.startswith("-A INPUT ") or s == "COMMIT"):
            at = i
            break
    if at is None:
        return text
    return "".join(lines[:at] + ours + lines[at:])


# -- firewalld ---------------------------------------------------------------------------------
# Rich rules carry no comment, so omwizard's are made recognisable the firewalld way: their
# source is an ipset named for the cluster (`omw-<cluster>`), whose entries are the peers. A node
# that leaves is one entry removed; a stale entry is one the plan no longer names.

IPSET_MAX = 31  # firewalld refuses ipset names longer than IPSET_MAXNAMELEN - 1


def firewalld_ipset(cluster: str) -> str:
    """The ipset of omwizard's sources for `cluster` (a short hash keeps long names unique)."""
    name = f"omw-{cluster}"
    if len(name) <= IPSET_MAX and _NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"omw-{re.sub(r'[^A-Za-z0-9_.-]', '', cluster)[:18]}-{digest}"


def firewalld_rich(ipset: str, proto: str, lo: int, hi: int) -> str:
    """omwizard's rich rule for one port range: from the cluster's ipset only, accept."""
    _safe(ipset)
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    return (f'rule family="ipv4" source ipset="{ipset}" '
            f'port port="{ports}" protocol="{proto}" accept')


SIDES = ("permanent", "runtime")


def firewalld_cmd(args: Iterable[str], sides: Iterable[str] = SIDES) -> list[str]:
    """argv of `sh -c`: one firewall-cmd change in the permanent configuration and/or live
    (the permanent one first: a refused change then leaves the live firewall untouched)."""
    args = list(args)
    steps = [shlex.join(["firewall-cmd", *(["--permanent"] if side == "permanent" else []),
                         *args]) + " >/dev/null" for side in SIDES if side in set(sides)]
    return ["sh", "-c", "set -e; " + "; ".join(steps)]


def firewalld_new_ipset(ipset: str, cluster: str) -> tuple[list[str], list[str]]:
    """(create the ipset permanently and reload so it exists live, delete it and reload).
    firewalld creates ipsets only in its permanent configuration; the check refuses this
    when the runtime holds changes a reload would drop."""
    _safe(ipset)
    new = shlex.join(["firewall-cmd", "--permanent", f"--new-ipset={ipset}", "--type=hash:ip"])
    desc = shlex.join(["firewall-cmd", "--permanent", f"--ipset={ipset}",
                       f"--set-description={tag(cluster)}: the cluster's peers, "
                       "written by omwizard"])
    delete = shlex.join(["firewall-cmd", "--permanent", f"--delete-ipset={ipset}"])
    return (["sh", "-c", f"set -e; {new} >/dev/null; {desc} >/dev/null; "
                         "firewall-cmd --reload >/dev/null"],
            ["sh", "-c", f"set -e; {delete} >/dev/null; firewall-cmd --reload >/dev/null"])


def firewalld_entry(ipset: str, address: str, sides: Iterable[str] = SIDES
                    ) -> tuple[list[str], list[str]]:
    """(add the address to the ipset, remove it), on the sides given."""
    _safe(ipset)
    sides = tuple(sides)
    return (firewalld_cmd([f"--ipset={ipset}", f"--add-entry={address}"], sides),
            firewalld_cmd([f"--ipset={ipset}", f"--remove-entry={address}"], sides))


def firewalld_rule(zone: str, rich: str, sides: Iterable[str] = SIDES
                   ) -> tuple[list[str], list[str]]:
    """(add the rich rule to the zone, remove it), on the sides given."""
    _safe(zone)
    sides = tuple(sides)
    return (firewalld_cmd([f"--zone={zone}", f"--add-rich-rule={rich}"], sides),
            firewalld_cmd([f"--zone={zone}", f"--remove-rich-rule={rich}"], sides))


# -- ufw ---------------------------------------------------------------------------------------


def ufw_allow(proto: str, src: str, ports: tuple[tuple[int, int], ...],
              cluster: str) -> tuple[list[str], list[str]]:
    """(the `ufw prepend allow` argv, the `ufw delete allow` argv that undoes it). Prepended:
    ufw takes the first rule that matches, so ours come before the operator's denies, as in
    nftables and iptables. ufw writes its own rules files (/etc/ufw/user.rules): persistent."""
    spec = ["proto", proto, "from", src, "to", "any", "port", ",".join(_ranges(ports, ":"))]
    return (["ufw", "prepend", "allow", *spec, "comment", tag(cluster)],
            ["ufw", "delete", "allow", *spec])


def ufw_groups(atoms: Iterable[Atom]) -> list[tuple[str, str, tuple[tuple[int, int], ...]]]:
    by: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for proto, src, lo, hi in atoms:
        by.setdefault((proto, src), set()).add((lo, hi))
    return [(p, s, tuple(sorted(ports))) for (p, s), ports in sorted(by.items())]
