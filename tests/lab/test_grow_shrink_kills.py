"""A kill at every journal boundary of a grow (2 -> 3 OM nodes) and of a shrink
(`remove-node n3 --leaving rollback`) resumes to the same end state as an uninterrupted run.

The kill-point hook (engine/step.py, `OMW_FAULT`) counts per process, so a chain of processes
walks the run: each one resumes what the one before left open, makes one more change and is
killed at its first boundary not yet passed:
- `after-write:N`: right after the Nth change reached a node, before its journal end;
- `after-begin:N`: right after the Nth journal begin (nothing reached the node yet). N=1
  only for the first process: a resume closes the begun record and begins it again, so
  `after-begin:1` would kill there forever; from then on N=2 (the redone change passes);
- `after-undo:N`: in the rollback of the leaving node's own changes, right after the Nth
  undo reached its node, before the journal says undone (rollback begins no record).
When a process dies at no boundary the chain had not been killed at yet (a step whose apply
starts with a change its check cannot see, as the `true` marker that carries a reload's
undo, is redone from its start), the next one gets N+1, so the chain always moves on. At
every kill the state directory must read and the interrupted change must be open (with
any sibling a concurrent step began on another node), nothing older; the chain is bounded,
and every boundary the uninterrupted run passes must have been killed at. At the end: the same files
(every file the reference run journaled, by hash), nft ruleset, exports (file and live),
database accounts and grants as the uninterrupted run; the members verified with their
size; n1 and n2 never restarted; `check` finds nothing to change. One lab for the module:
the reference grow and shrink, then the write chains, then the begin chains, in sequence.

The cluster is test_membership.py's (its helpers are imported, not copied).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omwizard.engine.state import StateStore
from omwizard.lab import hazelcast as hz
from omwizard.lab import services
from tests.lab.test_membership import (
    WORK,
    members_ok,
    omw,
    plan_text,
    prepare,
    restore,
    started,
)

pytestmark = pytest.mark.lab

MAX_KILLS = 90  # per command: a chain that does not end by then loops
HZ_XML = "/opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"


@dataclass
class Cluster:
    """The module's cluster: its plan file, state, and what the reference runs left."""

    lab: object
    plan: Path
    state: Path
    running: dict[str, tuple[int, str] | None]
    files: dict[str, list[str]] = field(default_factory=dict)  # node -> journaled files
    grown: dict[str, str] = field(default_factory=dict)
    shrunk: dict[str, str] = field(default_factory=dict)
    points: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # command -> records
    kills: dict[str, int] = field(default_factory=dict)


def grow_commands(plan: Path) -> list[tuple[str, ...]]:
    """What an operator runs after adding n3 to the plan (test_membership's apply_all)."""
    return [("apply", str(plan), *WORK, "--yes"),
            ("apply", str(plan), "--section", "storage", "--node", "n1", "--yes"),
            ("apply", str(plan), "--section", "verify", "--yes")]


def shrink_command(plan: Path) -> tuple[str, ...]:
    return ("remove-node", str(plan), "n3", "--leaving", "rollback", "--yes")


def point(record: dict) -> tuple[str, ...]:
    """A journal boundary as the run reaches it: which change, where (not its id)."""
    return (record["section"], record["step"], record["node"], record["kind"],
            record["target"])


def records_after(state: Path, seq: int) -> list[dict]:
    return [r for r in StateStore(state).journal() if r.get("seq", 0) > seq]


def last_seq(state: Path) -> int:
    return max((r.get("seq", 0) for r in StateStore(state).journal()), default=0)


def hashes(node, paths: list[str]) -> dict[str, str]:
    script = "".join(f"sha256sum {p} 2>/dev/null || echo absent {p}; " for p in paths)
    out = node.run(script).stdout.split("\n")
    return {f"{node.name} {ln.split()[1]}": ln.split()[0] for ln in out if ln.strip()}


def end_state(cluster: Cluster) -> dict[str, str]:
    """What a grow or shrink leaves, for comparison with the uninterrupted run."""
    lab = cluster.lab
    n1 = lab.nodes["n1"]
    state = {
        "n1 nft": n1.run("nft list ruleset", check=True).stdout,
        "n1 exports (live)": n1.run("exportfs -v").stdout,
        "db accounts": services.mysql(
            lab.db, "SELECT Host FROM mysql.user WHERE User='om' ORDER BY Host").stdout,
        "db grants": services.mysql(
            lab.db, "SELECT Host, Db FROM mysql.db WHERE User='om' ORDER BY Host").stdout,
    }
    for name, paths in cluster.files.items():
        state.update(hashes(lab.node(name), sorted({*paths, *([HZ_XML] if name != "db"
                                                               else [])})))
    for name in ("n1", "n2", "n3"):
        state[f"{name} OpenMeetings runs"] = str(hz.member_pid(lab.nodes[name]) is not None)
    return state


def not_ok(doc: dict | None) -> str:
    """The results that are neither ok nor skipped, in a few lines (for a failure message)."""
    if doc is None:
        return "no JSON"
    return "\n".join(f"{r['section']}.{r['step']} [{r['node']}] {r['status']}: {r['detail']}"
                     for r in doc["results"] if r["status"] not in ("ok", "skipped", "changed",
                                                                    "rolled-back"))


def same(got: dict[str, str], want: dict[str, str], what: str) -> None:
    diff = {k: (want.get(k), got.get(k)) for k in {*got, *want} if got.get(k) != want.get(k)}
    assert not diff, f"{what}: not the uninterrupted run's end state:\n" + json.dumps(
        diff, indent=1)[-6000:]


def assert_killed_open(state: Path, kind: str, seq: int) -> frozenset[tuple[str, ...]]:
    """After a kill: the state reads; the interrupted change is open, and only changes this
    process began are (a step changes its nodes concurrently, so a kill may cut a sibling
    too). A kill in a rollback leaves none open: an undo begins no record. The open points."""
    store = StateStore(state)
    journal = store.journal()
    store.results()
    store.load_plan_text()
    open_ = store.open_records()
    if kind == "after-undo":
        assert open_ == [], open_
        return frozenset()
    assert open_, f"{kind}: killed, but no record is open"
    assert all(r.get("seq", 0) > seq for r in open_), f"{kind}: left open before: {open_}"
    newest = max(journal, key=lambda r: r.get("seq", 0))
    assert newest in open_, (open_, newest)
    return frozenset(point(r) for r in open_)


def chain(cluster: Cluster, command: tuple[str, ...], kind: str, first: int
          ) -> tuple[int, dict | None, set[tuple[str, ...]]]:
    """Run command again and again, each process killed at its own first new boundary, until
    one ends by itself: (its exit status, its JSON, the points killed at)."""
    n = first
    killed: set[tuple[str, ...]] = set()
    trail: list[list[tuple[str, ...]]] = []
    for _ in range(MAX_KILLS):
        seq = last_seq(cluster.state)
        began = time.monotonic()
        rc, doc, err = omw(*command, state=cluster.state, OMW_FAULT=f"{kind}:{n}")
        print(f"  {command[0]} {kind}:{n} -> {rc} in {time.monotonic() - began:.1f} s")
        if rc != -9:
            assert "Traceback" not in err, err
            return rc, doc, killed
        cluster.kills[kind] = cluster.kills.get(kind, 0) + 1
        at = assert_killed_open(cluster.state, kind, seq)
        if not at:  # an undo: after the newest record the rollback marked undone
            undone = [r for r in StateStore(cluster.state).journal()
                      if r.get("phase") == "undone"]
            at = frozenset([("undone", *point(max(undone, key=lambda r: r["ts_undone"])))
                            if undone else ("undone", "none yet")])
        trail.append(sorted(at))
        # no boundary it had not been killed at: let the next process pass one more
        n = n + 1 if at <= killed else (2 if kind == "after-begin" else 1)
        killed |= at
        assert records_after(cluster.state, seq) or kind == "after-undo", \
            f"{kind}: a process was killed without a change begun"
    tail = [(r["seq"], r["step"], r["node"], r["target"][:40], r["phase"], r.get("note"))
            for r in StateStore(cluster.state).journal()[-8:]]
    pytest.fail(f"{' '.join(command[:1])} with OMW_FAULT={kind} did not end after {MAX_KILLS} "
                f"kills (the same change made again and again); last points: {trail[-4:]}; "
                f"journal: {tail}")


def grow(cluster: Cluster, kind: str | None) -> dict | None:
    """n3 added to the plan and applied: uninterrupted (kind None) or by kill chains."""
    cluster.plan.write_text(plan_text(cluster.lab, ["n1", "n2", "n3"]))
    doc = None
    for command in grow_commands(cluster.plan):
        key = " ".join(command[2:])
        if kind is None:
            seq = last_seq(cluster.state)
            rc, doc, err = omw(*command, state=cluster.state)
            assert rc == 0, err[-2000:] + not_ok(doc)
            cluster.points.setdefault(key, {point(r) for r in records_after(cluster.state,
                                                                            seq)})
        else:
            rc, doc, killed = chain(cluster, command, kind, 1)
            assert rc == 0, f"{kind}: {key} ended {rc}: " + not_ok(doc)
            missed = cluster.points[key] - killed
            assert not missed, f"{kind}: {key}: boundaries never killed at: {missed}"
    assert doc is not None
    return doc


def shrink(cluster: Cluster, kind: str | None) -> dict | None:
    command = shrink_command(cluster.plan)
    if kind is None:
        seq = last_seq(cluster.state)
        rc, doc, err = omw(*command, state=cluster.state)
        cluster.points["remove-node"] = {point(r) for r in records_after(cluster.state, seq)}
    else:
        rc, doc, killed = chain(cluster, command, kind, 1)
        if kind != "after-undo":
            missed = cluster.points["remove-node"] - killed
            assert not missed, f"{kind}: remove-node: boundaries never killed at: {missed}"
    assert rc == 0, f"{kind}: remove-node ended {rc}: " + not_ok(doc)
    assert "name: n3" not in cluster.plan.read_text()
    return doc


def checked_clean(cluster: Cluster, names: list[str]) -> None:
    """`check` over what the runs applied finds nothing to change, and the members formed."""
    docs = []
    for args in ((*WORK, "--section", "verify"), ("--section", "storage", "--node", "n1")):
        rc, doc, err = omw("check", str(cluster.plan), *args, state=cluster.state)
        assert doc is not None, err
        bad = [r for r in doc["results"] if r["status"] not in ("ok", "skipped")]
        assert rc == 0 and not bad, not_ok(doc)
        docs.append(doc)
    members_ok(docs[0], names)


@pytest.fixture(scope="module")
def cluster(lab, lab_manager, tmp_path_factory):
    """A running 2-node cluster, grown to 3 and shrunk back without interruption: the
    reference end states (and the boundaries each command passes)."""
    prepare(lab, lab_manager)
    n1 = lab.nodes["n1"]
    n1.run("nft flush ruleset", check=True)  # the responder is awaited from the host
    for name in ("n1", "n2", "n3"):  # OpenMeetings' info/health, so verify is all green
        services.start_health_responder(lab.nodes[name])
    n1.run("nft -f /etc/nftables.conf", check=True)
    tmp = tmp_path_factory.mktemp("kills")
    c = Cluster(lab, tmp / "plan.yaml", tmp / "state", {})
    c.plan.write_text(plan_text(lab, ["n1", "n2"]))
    for command in grow_commands(c.plan):
        rc, doc, err = omw(*command, state=c.state)
        assert rc == 0, err[-2000:] + not_ok(doc)
    c.running = {n: started(lab.nodes[n]) for n in ("n1", "n2")}
    assert None not in c.running.values()
    started_at = time.monotonic()
    seq = last_seq(c.state)
    members_ok(grow(c, None), ["n1", "n2", "n3"])
    for record in records_after(c.state, 0):
        if record["kind"] == "file":
            c.files.setdefault(record["node"], []).append(record["target"])
    c.grown = end_state(c)
    assert seq < last_seq(c.state)
    members_ok(shrink(c, None), ["n1", "n2"])
    c.shrunk = end_state(c)
    print(f"reference grow+shrink: {time.monotonic() - started_at:.0f} s, boundaries "
          f"{ {k: len(v) for k, v in c.points.items()} }")
    yield c
    restore(lab)


@pytest.mark.parametrize("kind", ["after-write", "after-begin", "after-undo"])
def test_grow_and_shrink_killed_at_every_boundary(cluster: Cluster, kind: str) -> None:
    """after-undo: a grow as usual, then the shrink's rollback of n3's own changes killed
    after each undo (the only kind of boundary a rollback has)."""
    c = cluster
    members_ok(grow(c, None if kind == "after-undo" else kind), ["n1", "n2", "n3"])
    same(end_state(c), c.grown, f"grow killed {kind}")
    assert {n: started(c.lab.nodes[n]) for n in ("n1", "n2")} == c.running  # not restarted
    checked_clean(c, ["n1", "n2", "n3"])
    members_ok(shrink(c, kind), ["n1", "n2"])
    same(end_state(c), c.shrunk, f"remove-node killed {kind}")
    assert {n: started(c.lab.nodes[n]) for n in ("n1", "n2")} == c.running
    checked_clean(c, ["n1", "n2"])
    assert StateStore(c.state).open_records() == []
    print(f"{kind}: {c.kills.get(kind, 0)} kills")
