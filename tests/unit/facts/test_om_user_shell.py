"""The OM user as the node's shell resolves it (facts.storage.om_user_shell, issue 21): the
script runs for real with /bin/sh on temporary unit files, drop-ins and om_home, under both
awks a node may have (mawk: Debian's default; gawk), and must say what unit_user + om_owner
say of the same files (the rules storage.data-dir and storage.shared always used)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from omwizard.facts import storage as sf

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "openmeetings"
AWKS = [a for a in ("mawk", "gawk") if shutil.which(a)]


def resolve(tmp: Path, awk: str, unit: str | None, dropins: dict[str, str] | None = None,
            home: bool = False) -> sf.OmUser:
    """The fact's command on these files: its output through the fact's parser."""
    units = (str(tmp / "etc" / "om.service"), str(tmp / "lib" / "om.service"))
    dropin_dir = tmp / "etc" / "om.service.d"
    if unit is not None:
        Path(units[1]).parent.mkdir(parents=True, exist_ok=True)
        Path(units[1]).write_text(unit)  # the second place: the first found is the one read
    for name, text in (dropins or {}).items():
        dropin_dir.mkdir(parents=True, exist_ok=True)
        (dropin_dir / name).write_text(text)
    om_home = tmp / "om"
    if home:
        om_home.mkdir()
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "awk").exists():
        (bindir / "awk").symlink_to(shutil.which(awk) or awk)
    script = sf.om_user_command(str(om_home), units, str(dropin_dir))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}).stdout
    return sf.parse_om_user(out)


def python_rules(unit: str | None, dropins: list[str], home_owner: str | None
                 ) -> tuple[str, str | None, str]:
    user, group = sf.unit_user(unit, *dropins)
    return sf.om_owner(unit is not None, user, group, home_owner)


@pytest.mark.parametrize("awk", AWKS)
def test_the_shipped_unit_runs_as_nobody_nogroup(tmp_path: Path, awk: str) -> None:
    unit = (FIXTURES / "9.1.0" / "openmeetings.service").read_text()
    got = resolve(tmp_path, awk, unit)
    assert (got.user, got.group, got.source) == python_rules(unit, [], None)
    assert (got.uid, got.gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)


@pytest.mark.parametrize("awk", AWKS)
def test_a_dropin_overrides_the_units_user_and_the_last_one_wins(tmp_path: Path, awk: str):
    unit = (FIXTURES / "9.1.0" / "openmeetings.service").read_text()
    dropins = {"10-a.conf": "[Service]\nUser = 'daemon'\n",
               "20-b.conf": "[Service]\nUser=\"bin\"\n"}
    got = resolve(tmp_path, awk, unit, dropins)
    assert (got.user, got.group) == ("bin", "nogroup")
    assert (got.user, got.group, got.source) == python_rules(unit, list(dropins.values()), None)
    assert got.uid == pwd.getpwnam("bin").pw_uid


@pytest.mark.parametrize("awk", AWKS)
def test_keys_outside_service_do_not_count_and_a_dropin_starts_outside_any_section(
        tmp_path: Path, awk: str) -> None:
    unit = "[Unit]\nUser=wrong\n[Service]\nType=simple\nUser=daemon\n"
    got = resolve(tmp_path, awk, unit, {"x.conf": "User=bin\n[Install]\nUser=bin\n"})
    assert got.user == "daemon"


@pytest.mark.parametrize("awk", AWKS)
def test_a_user_without_group_takes_its_primary_group(tmp_path: Path, awk: str) -> None:
    me = pwd.getpwuid(os.getuid())
    got = resolve(tmp_path, awk, f"[Service]\nUser={me.pw_name}\n")
    assert (got.user, got.group) == (me.pw_name, grp.getgrgid(me.pw_gid).gr_name)
    assert got.source == sf.OWNER_SOURCES["unit"]
    assert (got.uid, got.gid) == (me.pw_uid, me.pw_gid)


@pytest.mark.parametrize("awk", AWKS)
def test_an_unknown_user_without_group_keeps_its_name_as_group_and_no_numbers(
        tmp_path: Path, awk: str) -> None:
    got = resolve(tmp_path, awk, "[Service]\nUser=no-such-user-omw\n")
    assert (got.user, got.group, got.uid, got.gid) == (
        "no-such-user-omw", "no-such-user-omw", None, None)


@pytest.mark.parametrize("awk", AWKS)
def test_a_unit_without_user_runs_as_root(tmp_path: Path, awk: str) -> None:
    got = resolve(tmp_path, awk, "[Service]\nType=simple\n")
    assert (got.user, got.group, got.source) == python_rules("[Service]\n", [], None)
    assert (got.user, got.group, got.uid, got.gid) == ("root", "root", 0, 0)


@pytest.mark.parametrize("awk", AWKS)
def test_no_unit_the_owner_of_om_home_else_nobody(tmp_path: Path, awk: str) -> None:
    me = pwd.getpwuid(os.getuid())
    owner = f"{me.pw_name}:{grp.getgrgid(me.pw_gid).gr_name}"
    got = resolve(tmp_path, awk, None, home=True)
    assert (got.user, got.group, got.source) == python_rules(None, [], owner)
    nothing = resolve(tmp_path / "x", awk, None) if (tmp_path / "x").mkdir() is None else None
    assert nothing is not None
    assert (nothing.user, nothing.group, nothing.source) == python_rules(None, [], None)


def test_parse_om_user_of_a_cut_short_output_is_the_default() -> None:
    assert sf.parse_om_user("") == sf.OmUser("nobody", "nogroup",
                                             sf.OWNER_SOURCES["default"], None, None)
    lab = "user=nobody\ngroup=nogroup\nsource=unit\nuid=65534\ngid=65534\n"  # a lab node's
    assert sf.parse_om_user(lab) == sf.OmUser("nobody", "nogroup", sf.OWNER_SOURCES["unit"],
                                              65534, 65534)


def test_the_shared_write_runs_as_the_resolved_user() -> None:
    """The command carries the resolver (it needs nothing read before it); as root it writes
    as the user the unit names (the owner of the files shows it), as root without runuser."""
    cmd = sf.shared_write_resolving("/opt/om", "tok", "/d/p")
    assert sf.om_user_shell("/opt/om") in cmd and 'runuser -u "$u"' in cmd
    if os.getuid() != 0:
        return
    with tempfile.TemporaryDirectory(dir="/tmp") as where:
        tmp = Path(where)
        tmp.chmod(0o777)
        units = (str(tmp / "om.service"),)
        for user in ("nobody", "root"):
            Path(units[0]).write_text(f"[Service]\nUser={user}\n")
            probe = str(tmp / f"p-{user}")
            cmd = sf.shared_write_resolving(str(tmp), "tok", probe, units, str(tmp / "d"))
            subprocess.run(["sh", "-c", cmd], check=True)
            for name in sf.shared_names(probe):
                assert Path(name).read_text() == "tok"
                assert pwd.getpwuid(Path(name).stat().st_uid).pw_name == user
