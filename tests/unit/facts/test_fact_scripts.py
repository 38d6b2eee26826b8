"""The one-round-trip fact scripts and their pure parsers (the scripts run in a local sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from omwizard.facts.network import (
    CONFIG_GLOBS,
    config_files_command,
    nm_command,
    parse_config_files,
    parse_nm,
    parse_route_config,
)
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


def test_route_config_files_are_read_exactly_in_one_script(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "netplan").mkdir(parents=True)
    (etc / "network" / "interfaces.d").mkdir(parents=True)
    texts = {
        etc / "netplan" / "01.yaml": "network:\n  version: 2\n",
        etc / "network" / "interfaces": "auto eth0\niface eth0 inet dhcp",  # no last newline
        etc / "network" / "interfaces.d" / "x": "\n\nblank lines\n\n",
    }
    for path, text in texts.items():
        path.write_text(text)
    script = config_files_command(None, None)  # type: ignore[arg-type]
    assert all(g in script for g in CONFIG_GLOBS)
    got = parse_config_files(sh(script.replace("/etc/", f"{etc}/")).stdout)
    assert got == {str(p): t for p, t in texts.items()}
    assert parse_config_files(sh(script.replace("/etc/", f"{tmp_path}/none/")).stdout) == {}
    cut = "\x1eOMW-FILE /etc/network/interfaces\nauto eth0\n"  # cut short: not whole
    assert parse_config_files(cut) == {}


class Unnamed:
    """A plan node that names no interface: the fact finds the one carrying its address."""

    interface = None
    address = "198.18.0.11"


def test_nm_device_fact_finds_the_interface_and_its_connection(tmp_path: Path) -> None:
    import os

    for name, body in {
        "ip": 'echo "1: lo    inet 127.0.0.1/8 scope host lo"; '
              'echo "3: eth0    inet 198.18.0.11/24 brd 198.18.0.255 scope global eth0"',
        "nmcli": 'case "$*" in *"device show eth0"*) echo "GENERAL.CONNECTION:Wired 1";; '
                 '*"ipv4.routes connection show Wired 1"*) echo "224.0.0.0/4";; esac',
    }.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["sh", "-c", nm_command(None, Unnamed())],  # type: ignore[arg-type]
                         capture_output=True, text=True, env=env, check=True).stdout
    got = parse_nm(out)
    assert got.interface == "eth0"
    assert parse_route_config("", got.lines)[1:] == ("GENERAL.CONNECTION:Wired 1", "Wired 1",
                                                    "224.0.0.0/4")
    Unnamed.address = "198.18.0.99"  # no interface carries it: said, nothing asked
    try:
        out = subprocess.run(["sh", "-c", nm_command(None, Unnamed())],  # type: ignore[arg-type]
                             capture_output=True, text=True, env=env, check=True).stdout
    finally:
        Unnamed.address = "198.18.0.11"
    assert parse_nm(out) == parse_nm("@@nm-dev \n") and parse_nm(out).interface == ""
    assert parse_nm("").interface is None  # no nmcli: nothing printed


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
