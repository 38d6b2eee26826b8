"""What the runner gathers ahead (issue 21): a step's declared facts and files with those of
every later step of the run that runs on the node; and the file dump that rides along, run
for real in a local shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

from omwizard.engine.runner import Engine
from omwizard.engine.step import file_dump_script, parse_file_dump
from omwizard.facts.network import LINKS, MULTICAST_ROUTE
from omwizard.facts.preflight import OM_INSTALL, TIMEZONE
from omwizard.facts.verify import OM_PROCESS
from omwizard.plan.model import plan_from_dict
from omwizard.remote.ssh import RemotePool
from tests.ui.conftest import neutral_plan_dict


def engine(sections: list[str] | None = None) -> Engine:
    plan = plan_from_dict(neutral_plan_dict(), env={"OMW_DB_PASSWORD": "unit-only-1"})
    return Engine(plan, pool=RemotePool(), sections=sections)


def test_the_first_declaring_step_reads_ahead_for_the_whole_run():
    eng = engine()
    ctx = eng.context()
    om = eng.plan.om_nodes[0]
    first = next(s for s in eng.steps() if s.facts and s.applies(ctx, om) is None)
    assert first.id == "preflight.om-installed"
    facts, paths = eng._ahead(first, ctx, om)
    names = [f.name for f in facts]
    assert names[0] == OM_INSTALL.name  # its own first
    for later in (TIMEZONE, LINKS, MULTICAST_ROUTE, OM_PROCESS):
        assert later.name in names
    assert len(names) == len(set(names))  # each once, however many steps declare it
    assert any(p.endswith("/WEB-INF/classes/hazelcast.xml") for p in paths)
    assert any(p.endswith("/META-INF/persistence.xml") for p in paths)
    assert len(paths) == len(set(paths))


def test_a_node_gets_only_what_its_own_steps_declare():
    eng = engine()
    ctx = eng.context()
    db = next(n for n in eng.plan.nodes if not n.is_om)
    first = next(s for s in eng.steps() if s.facts and s.applies(ctx, db) is None)
    facts, paths = eng._ahead(first, ctx, db)
    names = {f.name for f in facts}
    assert TIMEZONE.name in names
    assert not names & {OM_INSTALL.name, LINKS.name, OM_PROCESS.name}  # om-only steps
    assert not any(p.endswith("hazelcast.xml") for p in paths)


def test_later_steps_only_and_the_selection_only():
    eng = engine(["network"])
    ctx = eng.context()
    om = eng.plan.om_nodes[0]
    last = [s for s in eng.steps() if s.facts][-1]
    facts, _ = eng._ahead(last, ctx, om)
    assert {f.name for f in facts} == {f.name for f in last.facts}  # nothing after it
    first = eng.steps()[0]
    names = {f.name for f in eng._ahead(first, ctx, om)[0]}
    assert OM_INSTALL.name not in names and TIMEZONE.name not in names  # not selected


def test_file_dump_round_trip(tmp_path: Path):
    text = tmp_path / "a b.conf"
    text.write_bytes("line 1\n\tünïcode ' \" $x\nno newline at end".encode())
    empty = tmp_path / "empty"
    empty.write_text("")
    missing = tmp_path / "missing"
    paths = [str(text), str(empty), str(missing)]
    out = subprocess.run(["sh", "-c", file_dump_script(paths)], capture_output=True,
                         text=True, check=True).stdout
    got = parse_file_dump(out, paths)
    assert got == {str(text): text.read_text(), str(empty): "", str(missing): None}
