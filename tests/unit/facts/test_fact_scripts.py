"""The one-round-trip fact scripts and their pure parsers (the scripts run in a local sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from omwizard.facts.network import parse_route_config, route_config_parts
from omwizard.facts.preflight import split_files, stray_checks, stray_parts
from omwizard.facts.verify import members_parts, parse_probe
from omwizard.remote.parts import part_results, parts_script, split_parts
from omwizard.remote.ssh import RunResult


def sh(script: str) -> RunResult:
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    return RunResult(script, done.returncode, done.stdout, done.stderr)


def sh_parts(parts: dict[str, str]) -> dict[str, RunResult]:
    """The parts run as run_parts runs them (one script), here in a local shell."""
    return part_results(parts, sh(parts_script(parts)))


def test_parts_keep_each_output_and_exit_status_apart() -> None:
    parts = {
        "a": "echo hi; exit 3",  # an exit ends only its own part
        "b": "printf no-newline",
        "c": 'echo err >&2; printf "two\\n\\n"',
        "d": "true",
    }
    got = part_results(parts, sh(parts_script(parts)))
    assert [(n, r.stdout, r.exit_status) for n, r in got.items()] == [
        ("a", "hi\n", 3), ("b", "no-newline", 0), ("c", "two\n\n", 0), ("d", "", 0)]
    assert got["d"].stderr == "err\n"  # the whole command's stderr goes to the last part
    assert got["a"].command == "echo hi; exit 3"


def test_parts_cut_short_have_no_exit_status() -> None:
    parts = {"a": "echo one", "b": "echo two"}
    whole = sh(parts_script(parts))
    cut = whole.stdout[: whole.stdout.index("two") + 4]
    assert split_parts(cut) == {"a": (0, "one\n"), "b": (None, "two\n")}
    lost = part_results(parts, RunResult(whole.command, None, whole.stdout, ""))
    assert {r.exit_status for r in lost.values()} == {None}
    assert part_results(parts, RunResult("x", 0, "", ""))["a"].exit_status is None


def test_part_names_are_words() -> None:
    for bad in ({}, {"a b": "true"}, {"-end-": "true"}):
        with pytest.raises(ValueError):
            parts_script(bad)


def test_stray_probe_looks_in_om_home_and_bin(tmp_path: Path) -> None:
    home = tmp_path / "om"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "hazelcast.xml").write_text("<hazelcast/>")
    got = sh_parts(stray_parts(str(home)))
    checked, exists = stray_checks(got["looks"].stdout)
    assert checked == {str(home), f"{home}/bin"}
    assert exists == {f"{home}/bin/hazelcast.xml"}
    assert split_files(got["units"].stdout) == {}  # no unit files here
    assert got["looks"].exit_status == 0 and got["units"].exit_status == 0


def test_stray_checks_and_the_files_stay_apart() -> None:
    looks = "@@checked /srv/om\n@@exists /srv/om/hazelcast.xml\n"
    units = "@@file /x\nWorkingDirectory=/y\n"
    assert stray_checks(looks) == ({"/srv/om"}, {"/srv/om/hazelcast.xml"})
    assert stray_checks(units) == (set(), set())
    assert split_files(looks) == {}


def test_parse_route_config() -> None:
    no_nm = "file:/etc/netplan/01.yaml\nfile:/etc/network/interfaces\n"
    assert parse_route_config(no_nm, "") == (
        ["/etc/netplan/01.yaml", "/etc/network/interfaces"], None, None, "")
    idle = "@@nm-device\nGENERAL.CONNECTION:--\n"
    assert parse_route_config("", idle) == ([], "GENERAL.CONNECTION:--", None, "")
    nm = ("@@nm-device\nGENERAL.CONNECTION:Wired 1\n"
          "@@nm-routes Wired 1\n224.0.0.0/4, 10.0.0.0/8 10.1.1.1 100\n")
    assert parse_route_config("file:/etc/netplan/a.yaml\n", nm) == (
        ["/etc/netplan/a.yaml"], "GENERAL.CONNECTION:Wired 1", "Wired 1",
        "224.0.0.0/4, 10.0.0.0/8 10.1.1.1 100")


def test_route_config_probe_runs_without_nmcli() -> None:
    got = sh_parts(route_config_parts("eth0"))
    paths, device, routes_of, _ = parse_route_config(got["files"].stdout, got["nm"].stdout)
    assert all(p.startswith("/etc/") for p in paths)
    assert routes_of is None or device is not None
    assert got["files"].exit_status == 0 and got["nm"].exit_status == 0


def test_members_probe_tails_the_log_it_finds(tmp_path: Path) -> None:
    home = tmp_path / "om"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "openmeetings.log").write_text("".join(f"{i}\n" for i in range(10)))
    got = sh_parts(members_parts(str(home), "/nonexistent.log", 3))
    assert got["tail"].stdout == "7\n8\n9\n"
    facts = parse_probe(got["probe"].stdout)
    assert facts["log"] == f"{home}/logs/openmeetings.log"
    assert facts["now"] and facts["log_size"] == 20
    # no log anywhere: the tail part fails on its own, the probe's facts stay whole
    (home / "logs" / "openmeetings.log").unlink()
    got = sh_parts(members_parts(str(home), "/nonexistent.log", 3))
    assert got["tail"].stdout == "" and got["tail"].exit_status != 0
    assert parse_probe(got["probe"].stdout)["now"] and got["probe"].exit_status == 0
