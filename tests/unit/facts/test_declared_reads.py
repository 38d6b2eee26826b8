"""Reads that became declared facts in issue 21 (one command fewer each on a slow link): the
commands depend on the plan alone and are run for real with /bin/sh where this host can."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from omwizard.facts import database as dbf
from omwizard.facts import preflight as pf
from omwizard.facts import storage as sf
from tests.unit.facts.test_storage import nfs_plan


def sh(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          check=True).stdout


def test_zoneinfo_fact_says_whether_the_plans_zone_is_installed() -> None:
    plan = nfs_plan()
    node = plan.node("om1")
    assert plan.cluster.timezone == "Europe/Berlin"
    assert pf.ZONEINFO.parse(sh(pf.ZONEINFO.command(plan, node))) is True  # tzdata here
    other = replace(plan, cluster=replace(plan.cluster, timezone="Nowhere/Omwizard"))
    assert pf.ZONEINFO.parse(sh(pf.ZONEINFO.command(other, node))) is False
    assert pf.ZONEINFO.stable  # no change omwizard makes installs tzdata


def test_mysql_cnf_fact_is_the_config_listing_on_mysql_plans_only() -> None:
    plan = nfs_plan()
    node = plan.node("om1")
    assert dbf.MYSQL_CNF.command(plan, node) == dbf.MYSQL_CNF_PROBE
    sh(dbf.MYSQL_CNF.command(plan, node))  # runs (and succeeds) on a host without MySQL
    pg = replace(plan, database=replace(plan.database, type="postgresql"))
    assert dbf.MYSQL_CNF.command(pg, node) == "true"
    # the lab's MariaDB node (Debian): what the listing printed there
    lab = ("/etc/mysql/mariadb.conf.d/50-server.cnf\n"
           "default:/etc/mysql/mariadb.conf.d/50-server.cnf\n")
    assert dbf.pick_cnf(dbf.MYSQL_CNF.parse(lab)) == "/etc/mysql/mariadb.conf.d/50-server.cnf"


def test_data_dir_facts_depend_on_the_plan_alone() -> None:
    plan = nfs_plan()
    node = plan.node("om1")
    assert sf.DEFAULT_LEFTOVERS.command(plan, node) == sf.leftovers_probe(
        "/opt/om/webapps/openmeetings/data", plan.storage.path)
    assert sf.OM_USER.command(plan, node) == sf.om_user_command(plan.cluster.om_home)


def test_the_route_facts_share_one_sudo_mode() -> None:
    """A gather is one command per sudo mode: multicast-route's and route-persistent's facts,
    read again after the route is added, go in one."""
    from omwizard.facts import network as nf

    assert nf.MULTICAST_ROUTE.sudo == nf.ROUTE_CONFIG_FILES.sudo == nf.NM_DEVICE.sudo


def test_remote_user_reads_its_probe_and_the_file_it_edits_with_the_facts() -> None:
    """remote-user's check, apply and re-check send no read of their own (without an admin
    password): the probe is declared, and the config file the lab's listing picks is among
    the declared files (its edit takes the cached copy; the write still compares hashes)."""
    from omwizard.sections.database import RemoteUserStep

    plan = nfs_plan()
    node = plan.node("om1")
    assert {f.name for f in RemoteUserStep.facts} == {dbf.ADMIN_PROBE.name, dbf.MYSQL_CNF.name}
    paths = [p for files in RemoteUserStep.files for p in files.paths(plan, node)]
    lab = ("/etc/mysql/mariadb.conf.d/50-server.cnf\n"
           "default:/etc/mysql/mariadb.conf.d/50-server.cnf\n")
    assert dbf.pick_cnf(lab) in paths
    assert dbf.pick_cnf("default:/etc/mysql/mysql.conf.d/mysqld.cnf\n") in paths
    pg = replace(plan, database=replace(plan.database, type="postgresql"))
    assert [p for files in RemoteUserStep.files for p in files.paths(pg, node)] == []


def test_route_persistent_declares_the_fixed_files_its_apply_edits() -> None:
    from omwizard.configs import netconf
    from omwizard.sections.network import RoutePersistentStep

    plan = nfs_plan()
    node = plan.node("om1")
    paths = [p for files in RoutePersistentStep.files for p in files.paths(plan, node)]
    assert netconf.IFUPDOWN_MAIN in paths and netconf.NETPLAN_FILE in paths


def test_the_timezone_facts_go_through_sudo_like_the_db_nodes_others() -> None:
    """The db node's first gather (the firewall's ruleset, the zone, the admin probe) is one
    command, and the batch that sets the zone under sudo reads it back for the re-check."""
    from omwizard.facts import firewall as fw

    assert pf.TIMEZONE.sudo and pf.ZONEINFO.sudo
    assert all(f.sudo for f in (fw.NFT_RULESET, dbf.ADMIN_PROBE, dbf.MYSQL_CNF))
