"""The preflight and verify sections' declared facts: the commands the steps ran before (so
the evidence operators see is unchanged), and each parser on captured outputs (a table of
what a node printed and the typed value it means)."""

from __future__ import annotations

from typing import Any

import pytest

from omwizard.facts import preflight as pf
from omwizard.facts import verify as vf
from omwizard.plan.model import plan_from_dict


def plan():
    return plan_from_dict({
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin", "om_home": "/srv/om"},
        "nodes": [{"name": "om1", "host": "10.1.1.1", "roles": ["om"]},
                  {"name": "om2", "host": "10.1.1.2", "roles": ["om"]}],
        "database": {"type": "mysql", "host": "10.1.1.1", "name": "openmeetings", "user": "om",
                     "password": "${OMW_DB_PASSWORD}", "manage": False},
        "storage": {"kind": "existing", "path": "/opt/omdata"},
    }, env={"OMW_DB_PASSWORD": "x"})


def test_the_facts_run_the_commands_the_steps_ran() -> None:
    p = plan()
    node = p.node("om1")
    parts = pf.stray_parts("/srv/om")
    assert pf.STRAY_LOOKS.command(p, node) == parts["looks"]
    assert pf.STRAY_UNITS.command(p, node) == parts["units"]
    assert vf.OM_PROCESS.command(p, node) == vf.om_probe("/srv/om")
    facts = (pf.STRAY_LOOKS, pf.STRAY_UNITS, vf.OM_PROCESS, pf.OM_INSTALL, pf.TIMEZONE)
    assert len({f.name for f in facts}) == len(facts)
    assert all(f.sudo and not f.stable for f in (pf.STRAY_LOOKS, pf.STRAY_UNITS, vf.OM_PROCESS))


LOOKS_OUTPUTS: list[tuple[str, tuple[set[str], set[str]]]] = [
    ("", (set(), set())),
    ("@@checked /srv/om\n@@checked /srv/om/bin\n", ({"/srv/om", "/srv/om/bin"}, set())),
    ("@@checked /srv/om\n@@exists /srv/om/hazelcast.xml\n@@checked /srv/om/bin\n",
     ({"/srv/om", "/srv/om/bin"}, {"/srv/om/hazelcast.xml"})),
    ("@@checked /var/lib/my dir\n", ({"/var/lib/my dir"}, set())),
    ("sed: can't read /etc/x: No such file\n@@checked /srv/om\n", ({"/srv/om"}, set())),
]


@pytest.mark.parametrize(("stdout", "expected"), LOOKS_OUTPUTS)
def test_stray_looks_parses_the_checked_and_existing(stdout: str, expected: Any) -> None:
    assert pf.STRAY_LOOKS.parse(stdout) == expected


UNITS_OUTPUTS: list[tuple[str, dict[str, str]]] = [
    ("", {}),
    ("@@file /etc/systemd/system/openmeetings.service\n[Service]\nUser=om\n\n",
     {"/etc/systemd/system/openmeetings.service": "[Service]\nUser=om\n"}),
    ("@@file /srv/om/bin/setenv.sh\nJAVA_OPTS=\"-Dhazelcast.config=/x.xml\"\n\n"
     "@@file /etc/systemd/system/openmeetings.service.d/omwizard.conf\n"
     "[Service]\nWorkingDirectory=/srv/om\n\n",
     {"/srv/om/bin/setenv.sh": "JAVA_OPTS=\"-Dhazelcast.config=/x.xml\"\n",
      "/etc/systemd/system/openmeetings.service.d/omwizard.conf":
          "[Service]\nWorkingDirectory=/srv/om\n"}),
]


@pytest.mark.parametrize(("stdout", "expected"), UNITS_OUTPUTS)
def test_stray_units_parses_the_files(stdout: str, expected: dict[str, str]) -> None:
    assert pf.STRAY_UNITS.parse(stdout) == expected


EMPTY = {"pids": {}, "mtimes": {}, "log": None, "log_size": 0, "systemd": False, "unit": None,
         "now": None}
HZ = "/srv/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
PROCESS_OUTPUTS: list[tuple[str, dict[str, Any]]] = [
    ("", EMPTY),
    ("now 1700000000\n", {**EMPTY, "now": 1700000000}),
    ("now 1700000000\npid 4242 100\npid 4243 7\n"
     f"mtime 1699999000 {HZ}\n"
     "log /srv/om/logs/openmeetings.log 123456\nsystemd\n"
     "unit /etc/systemd/system/openmeetings.service\n",
     {"pids": {4242: 1699999900, 4243: 1699999993}, "mtimes": {HZ: 1699999000},
      "log": "/srv/om/logs/openmeetings.log", "log_size": 123456, "systemd": True,
      "unit": "/etc/systemd/system/openmeetings.service", "now": 1700000000}),
    ("now 1700000000\npid 4242 \nmtime x /y\nlog\n",  # half lines are skipped, not fatal
     {**EMPTY, "now": 1700000000}),
]


@pytest.mark.parametrize(("stdout", "expected"), PROCESS_OUTPUTS)
def test_om_process_parses_the_probe(stdout: str, expected: dict[str, Any]) -> None:
    assert vf.OM_PROCESS.parse(stdout) == expected
