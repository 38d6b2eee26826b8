"""The storage section's decisions, on outputs and files as real nodes produce them.

The probe scripts are run for real with /bin/sh on this machine (tmp folders, this host's
dpkg), so the parsers are tested on what the scripts actually print.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from omwizard.configs.exports import ExportsConflict, exports_remove
from omwizard.configs.fstab import FstabConflict, fstab_ensure, fstab_remove
from omwizard.facts import storage as sf
from omwizard.facts.storage import (
    client_addresses,
    client_line,
    exportfs_remedy,
    exports_text,
    mount_remedy,
)
from omwizard.plan.model import plan_from_dict

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "openmeetings"


def sh(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout


def nfs_plan(**storage: str):
    nodes = [
        {"name": "om1", "host": "10.1.1.1", "roles": ["om", "storage"],
         "server_url": "https://om1.example.org/openmeetings"},
        {"name": "om2", "host": "10.1.1.2", "roles": ["om"],
         "server_url": "https://om2.example.org/openmeetings"},
        {"name": "om3", "host": "10.1.1.3", "roles": ["om"],
         "server_url": "https://om3.example.org/openmeetings"},
    ]
    return plan_from_dict({
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
        "nodes": nodes,
        "database": {"type": "mysql", "host": "10.1.1.1", "name": "openmeetings", "user": "om",
                     "password": "${OMW_DB_PASSWORD}", "manage": False},
        "storage": {"kind": "nfs", **storage},
    }, env={"OMW_DB_PASSWORD": "x"})


# -- exports and fstab, as the steps use the transforms -----------------------------------------

DEBIAN_EXPORTS = """\
# /etc/exports: the access control list for filesystems which may be exported
#\t\tto NFS clients.  See exports(5).
#
# Example for NFSv2 and NFSv3:
# /srv/homes       hostname1(rw,sync,no_subtree_check) hostname2(ro,sync,no_subtree_check)
#
/srv/backup 10.9.9.9(ro,sync)
"""


def test_exports_lines_are_the_documentations_one_per_other_node() -> None:
    plan = nfs_plan()
    server = plan.node("om1")
    clients = client_addresses(plan, server)
    assert clients == ["10.1.1.2", "10.1.1.3"]
    text = exports_text(DEBIAN_EXPORTS, "/opt/omdata", clients, plan.storage.export_options)
    assert text == DEBIAN_EXPORTS + (
        "/opt/omdata 10.1.1.2(rw,sync,no_subtree_check,no_root_squash)\n"
        "/opt/omdata 10.1.1.3(rw,sync,no_subtree_check,no_root_squash)\n"
    )
    # a second run adds nothing, and the lines come out exactly
    assert exports_text(text, "/opt/omdata", clients, plan.storage.export_options) == text
    for client in clients:
        text = exports_remove(text, "/opt/omdata", client)
    assert text == DEBIAN_EXPORTS


def test_exports_existing_line_with_other_options_is_a_conflict() -> None:
    text = "/opt/omdata 10.1.1.2(ro,sync)\n"
    with pytest.raises(ExportsConflict, match="10.1.1.2"):
        exports_text(text, "/opt/omdata", ["10.1.1.2"], "rw,sync,no_subtree_check,no_root_squash")


def test_exports_of_a_missing_file_start_from_nothing() -> None:
    assert exports_text(None, "/opt/omdata", ["10.1.1.2"], "rw,sync") == (
        "/opt/omdata 10.1.1.2(rw,sync)\n"
    )


DEBIAN_FSTAB = """\
# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=0a3b-41f2 /               ext4    errors=remount-ro 0       1
/swapfile none swap sw 0 0"""  # no final newline, as hand-edited files often are


def test_fstab_line_is_the_documentations_and_comes_off_exactly() -> None:
    plan = nfs_plan()
    line = client_line(plan)
    assert line == "10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr"
    text = fstab_ensure(DEBIAN_FSTAB, line)
    assert text == DEBIAN_FSTAB + "\n" + line + "\n"
    assert fstab_ensure(text, line) == text
    assert fstab_remove(text, line) == DEBIAN_FSTAB + "\n"


def test_fstab_other_entry_at_the_mount_point_is_a_conflict() -> None:
    text = "/dev/sdb1 /opt/omdata ext4 defaults 0 2\n"
    with pytest.raises(FstabConflict, match="/opt/omdata"):
        fstab_ensure(text, client_line(nfs_plan()))


def test_custom_mount_options_end_up_in_the_line() -> None:
    plan = nfs_plan(path="/srv/om-data", mount_options="vers=4.2,hard,timeo=600")
    assert client_line(plan) == "10.1.1.1:/srv/om-data /srv/om-data nfs vers=4.2,hard,timeo=600"


# -- packages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "manager", "installed"),
    [
        ("apt:nfs-common:install ok installed\n", "apt", True),
        ("apt:nfs-kernel-server:deinstall ok config-files\n", "apt", False),
        ("apt:nfs-kernel-server:\n", "apt", False),  # never installed: dpkg-query says nothing
        ("dnf:nfs-utils:installed\n", "dnf", True),
        ("yum:nfs-utils:missing\n", "yum", False),
        ("unknown::\n", "unknown", False),
        ("", "unknown", False),
    ],
)
def test_package_probe_parsing(output: str, manager: str, installed: bool) -> None:
    state = sf.parse_package_probe(output)
    assert (state.manager, state.installed) == (manager, installed)


def test_package_probe_on_this_host() -> None:
    """This host is Debian with nfs-common and nfs-kernel-server installed (the brief)."""
    for role, name in (("client", "nfs-common"), ("server", "nfs-kernel-server")):
        state = sf.parse_package_probe(sh(sf.package_probe(role)))
        assert state == sf.PackageState("apt", name, True)


def test_install_commands() -> None:
    assert sf.install_argv(sf.PackageState("apt", "nfs-common", False)) == [
        "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "nfs-common"]
    assert sf.install_argv(sf.PackageState("dnf", "nfs-utils", False)) == [
        "dnf", "install", "-y", "nfs-utils"]
    with pytest.raises(ValueError, match="package manager"):
        sf.install_argv(sf.PackageState("unknown", "", False))
    assert "not removed on rollback" in sf.INSTALL_UNDO_TEXT


# -- mounts --------------------------------------------------------------------------------------


def test_findmnt_verdicts() -> None:
    want = "10.1.1.1:/opt/omdata"
    nfs = sf.parse_findmnt("10.1.1.1:/opt/omdata nfs4\n")
    assert sf.mount_verdict(nfs, want) == "ok"
    assert sf.mount_verdict(sf.parse_findmnt("10.1.1.1:/opt/omdata/ nfs\n"), want) == "ok"
    assert sf.mount_verdict(sf.parse_findmnt(""), want) == "absent"
    bind = sf.parse_findmnt("/dev/vda1[/var/tmp/omwlab/omdata] ext4\n")
    assert bind == sf.Mount("/dev/vda1[/var/tmp/omwlab/omdata]", "ext4")
    assert sf.mount_verdict(bind, want) == "other"
    assert sf.mount_verdict(sf.parse_findmnt("10.1.1.9:/opt/omdata nfs4\n"), want) == "other"
    # stacked mounts: the last line is the one on top
    stacked = sf.parse_findmnt("/dev/vda1 ext4\n10.1.1.1:/opt/omdata nfs4\n")
    assert sf.mount_verdict(stacked, want) == "ok"


def test_findmnt_on_this_host() -> None:
    out = subprocess.run(sf.findmnt_argv("/"), capture_output=True, text=True).stdout
    mount = sf.parse_findmnt(out)
    assert mount is not None and mount.fstype
    none = subprocess.run(sf.findmnt_argv("/proc/self"), capture_output=True, text=True)
    assert none.returncode != 0 and sf.parse_findmnt(none.stdout) is None


def test_mount_and_exportfs_remedies_name_the_cause() -> None:
    assert "no NFS client" in mount_remedy("mount.nfs: No such device", "10.1.1.1")
    assert "storage.nfs-server" in mount_remedy(
        "mount.nfs: access denied by server while mounting 10.1.1.1:/opt/omdata", "10.1.1.1")
    assert "2049" in mount_remedy("mount.nfs: Connection timed out", "10.1.1.1")
    assert "exportfs -ra" in exportfs_remedy("exportfs: something odd")
    assert "install" in exportfs_remedy("sh: 1: exportfs: not found")


EXPORTFS_V = """\
/srv/backup   \t10.9.9.9(sync,wdelay,hide,no_subtree_check,sec=sys,ro,root_squash,no_all_squash)
/opt/omdata   \t10.1.1.2(sync,wdelay,hide,no_subtree_check,sec=sys,rw,secure,no_root_squash)
/a/very/long/path/that/exportfs/wraps/onto/the/next/line
\t\t10.1.1.3(sync,wdelay,hide,no_subtree_check,sec=sys,rw,secure,no_root_squash,no_all_squash)
"""


def test_exportfs_live_table() -> None:
    live = sf.parse_exportfs(EXPORTFS_V)
    opts = "rw,sync,no_subtree_check,no_root_squash"
    assert sf.missing_live_exports(live, "/opt/omdata", ["10.1.1.2", "10.1.1.3"], opts) == [
        "10.1.1.3"]
    long = "/a/very/long/path/that/exportfs/wraps/onto/the/next/line"
    assert sf.missing_live_exports(live, long, ["10.1.1.3"], opts) == []
    assert sf.missing_live_exports(live, "/srv/backup", ["10.9.9.9"], opts) == ["10.9.9.9"]
    assert sf.missing_live_exports({}, "/opt/omdata", ["10.1.1.2"], opts) == ["10.1.1.2"]


# -- the OM user and its numbers ---------------------------------------------------------------


def test_unit_user_of_the_shipped_unit() -> None:
    unit = (FIXTURES / "9.1.0" / "openmeetings.service").read_text()
    assert sf.unit_user(unit) == ("nobody", "nogroup")
    dropin = "[Service]\nUser=om\n"
    assert sf.unit_user(unit, dropin) == ("om", "nogroup")
    assert sf.unit_user("[Unit]\nUser=wrong\n[Service]\nType=simple\n") == (None, None)


def test_om_owner_rules() -> None:
    assert sf.om_owner(True, "nobody", "nogroup", None)[:2] == ("nobody", "nogroup")
    assert sf.om_owner(True, "om", None, None)[:2] == ("om", None)  # primary group resolved later
    assert sf.om_owner(True, None, None, None)[:2] == ("root", "root")
    assert sf.om_owner(False, None, None, "tomcat:tomcat")[:2] == ("tomcat", "tomcat")
    assert sf.om_owner(False, None, None, None)[:2] == ("nobody", "nogroup")


def test_parse_ids_of_what_id_and_getent_printed() -> None:
    assert sf.parse_ids("uid=65534\ngid=65534\n") == (65534, 65534)
    assert sf.parse_ids("uid=\ngid=\n") == (None, None)  # no such user, no such group


def test_id_verdict_prefers_the_nfs_server_then_the_majority() -> None:
    ids = {"n1": (65534, 65534), "n2": (65534, 65534), "n3": (1001, 65534)}
    verdict = sf.id_verdict(ids)
    assert verdict.reference == (65534, 65534) and verdict.wrong == {"n3": (1001, 65534)}
    verdict = sf.id_verdict(ids, prefer="n3")
    assert verdict.reference == (1001, 65534) and set(verdict.wrong) == {"n1", "n2"}
    assert sf.id_verdict({"n1": (5, 5), "n2": (5, 5)}).wrong == {}
    missing = sf.id_verdict({"n1": (5, 5), "n2": (None, None)})
    assert missing.wrong == {"n2": (None, None)}


def test_id_fix_commands() -> None:
    fix = sf.id_fix("nobody", "nogroup", (1001, 65534), (65534, 65534))
    assert fix == ["usermod -u 65534 nobody", "find / -xdev -uid 1001 -exec chown -h 65534 {} +"]
    fix = sf.id_fix("om", "om", (1001, 1002), (1005, 1006))
    assert fix[:2] == ["groupmod -g 1006 om", "usermod -u 1005 om"]
    assert sf.id_fix("om", "om", (None, None), (1005, 1006))[:2] == [
        "groupadd -g 1006 om", "useradd -r -u 1005 -g 1006 -s /usr/sbin/nologin om"]


# -- the data dir --------------------------------------------------------------------------------


def test_current_data_dir_last_option_wins() -> None:
    default = "/opt/om/webapps/openmeetings/data"
    assert sf.current_data_dir(["-Xmx1G"], default) == default
    assert sf.current_data_dir(["-DDATA_DIR=/a", "-DDATA_DIR=/b"], default) == "/b"
    assert sf.data_dir_option("/opt/omdata") == "-DDATA_DIR=/opt/omdata"


def test_owner_probe_and_parse(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    state = sf.parse_owner(sh(sf.owner_probe(str(tmp_path))))
    assert state.exists and state.owner.startswith(me + ":")
    assert state.numeric == f"{os.getuid()}:{os.getgid()}"
    assert sf.parse_owner(sh(sf.owner_probe(str(tmp_path / "missing")))) == sf.FolderState(False)
    assert not sf.owner_ok(state, "nobody", "nogroup")


def test_leftovers_found_and_copy_command_copies_only_missing(tmp_path: Path) -> None:
    old, new = tmp_path / "webapp data", tmp_path / "omdata"  # a space: quoting is exercised
    (old / "files" / "room1").mkdir(parents=True)
    new.mkdir()
    (old / "files" / "room1" / "a.pdf").write_text("A")
    (old / "streams.bin").write_text("S")
    (new / "streams.bin").write_text("already there")
    listing = sh(sf.leftovers_probe(str(old), str(new)))
    assert listing.split("\n")[:-1] == ["./files/room1/a.pdf"]
    warning = sf.leftovers_warning(str(old), str(new), listing)
    assert "1 file(s)" in warning and "never copies" in warning
    command = sf.copy_command(str(old), str(new))
    sh(command.removeprefix("sudo "))  # run as the operator would (we are root already)
    assert (new / "files" / "room1" / "a.pdf").read_text() == "A"
    assert (new / "streams.bin").read_text() == "already there"  # never overwritten
    assert sh(sf.leftovers_probe(str(old), str(new))) == ""
    assert sf.leftovers_warning(str(old), str(new), "") == ""


def test_leftovers_none_when_old_is_missing_or_the_same_folder(tmp_path: Path) -> None:
    new = tmp_path / "omdata"
    new.mkdir()
    (new / "x").write_text("x")
    link = tmp_path / "data"
    link.symlink_to(new)
    assert sh(sf.leftovers_probe(str(link), str(new))) == ""
    assert sh(sf.leftovers_probe(str(tmp_path / "nothing"), str(new))) == ""


def test_leftovers_bounded() -> None:
    listing = "\n".join(f"./f{i}" for i in range(sf.LEFTOVER_LIMIT + 1))
    assert f"more than {sf.LEFTOVER_LIMIT}" in sf.leftovers_warning("/o", "/n", listing)
