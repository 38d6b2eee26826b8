"""The storage section's declared facts: the commands the steps ran before, and each parser on
captured outputs (a table of what a node printed and the typed value it means)."""

from __future__ import annotations

import shlex

import pytest

from omwizard.facts import storage as sf
from omwizard.facts.storage import FolderState, Mount, PackageState
from omwizard.plan.model import plan_from_dict


def nfs_plan():
    return plan_from_dict({
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
        "nodes": [
            {"name": "om1", "host": "10.1.1.1", "roles": ["om", "storage"]},
            {"name": "om2", "host": "10.1.1.2", "roles": ["om"]},
        ],
        "database": {"type": "mysql", "host": "10.1.1.1", "name": "openmeetings", "user": "om",
                     "password": "${OMW_DB_PASSWORD}", "manage": False},
        "storage": {"kind": "nfs", "path": "/opt/omdata"},
    }, env={"OMW_DB_PASSWORD": "x"})


def test_the_facts_run_the_commands_the_steps_ran() -> None:
    plan = nfs_plan()
    node = plan.node("om2")
    assert sf.NFS_SERVER_PACKAGE.command(plan, node) == sf.package_probe("server")
    assert sf.NFS_CLIENT_PACKAGE.command(plan, node) == sf.package_probe("client")
    assert sf.DATA_FOLDER.command(plan, node) == sf.owner_probe("/opt/omdata")
    assert sf.DATA_MOUNT.command(plan, node) == shlex.join(sf.findmnt_argv("/opt/omdata"))
    assert sf.DATA_MOUNT.command(plan, node) == (
        "findmnt -n -k -o SOURCE,FSTYPE --mountpoint /opt/omdata")
    names = [f.name for f in (sf.NFS_SERVER_PACKAGE, sf.NFS_CLIENT_PACKAGE, sf.DATA_FOLDER,
                              sf.DATA_MOUNT)]
    assert len(set(names)) == len(names)
    assert all(f.sudo and not f.stable for f in (sf.NFS_SERVER_PACKAGE, sf.DATA_FOLDER))


PACKAGE_OUTPUTS = [
    ("apt:nfs-kernel-server:install ok installed\n",
     PackageState("apt", "nfs-kernel-server", True)),
    ("apt:nfs-common:deinstall ok config-files\n", PackageState("apt", "nfs-common", False)),
    ("apt:nfs-common:\n", PackageState("apt", "nfs-common", False)),
    ("dnf:nfs-utils:installed\n", PackageState("dnf", "nfs-utils", True)),
    ("yum:nfs-utils:missing\n", PackageState("yum", "nfs-utils", False)),
    ("unknown\n", PackageState("unknown", "", False)),
    ("", PackageState("unknown", "", False)),
]


@pytest.mark.parametrize(("stdout", "expected"), PACKAGE_OUTPUTS)
def test_package_facts_parse_what_the_probe_printed(stdout: str, expected: PackageState) -> None:
    assert sf.NFS_SERVER_PACKAGE.parse(stdout) == expected
    assert sf.NFS_CLIENT_PACKAGE.parse(stdout) == expected


FOLDER_OUTPUTS = [
    ("MISSING\n", FolderState(False)),
    ("", FolderState(False)),  # a read that printed nothing: treated as missing, as before
    ("openmeetings:openmeetings 998:998\n", FolderState(True, "openmeetings:openmeetings",
                                                         "998:998")),
    ("root:root 0:0\n", FolderState(True, "root:root", "0:0")),
    ("UNKNOWN:UNKNOWN 4242:4242\n", FolderState(True, "UNKNOWN:UNKNOWN", "4242:4242")),
]


@pytest.mark.parametrize(("stdout", "expected"), FOLDER_OUTPUTS)
def test_data_folder_fact_parses_what_stat_printed(stdout: str, expected: FolderState) -> None:
    assert sf.DATA_FOLDER.parse(stdout) == expected


MOUNT_OUTPUTS = [
    ("", None),  # findmnt exits 1 and prints nothing: nothing is mounted there
    ("10.1.1.1:/opt/omdata nfs4\n", Mount("10.1.1.1:/opt/omdata", "nfs4")),
    ("/dev/vda1[/var/tmp/omwlab/omdata] ext4\n",
     Mount("/dev/vda1[/var/tmp/omwlab/omdata]", "ext4")),
    ("/dev/vda1 ext4\n10.1.1.1:/opt/omdata nfs4\n", Mount("10.1.1.1:/opt/omdata", "nfs4")),
]


@pytest.mark.parametrize(("stdout", "expected"), MOUNT_OUTPUTS)
def test_data_mount_fact_parses_what_findmnt_printed(stdout: str, expected: Mount | None) -> None:
    assert sf.DATA_MOUNT.parse(stdout) == expected
