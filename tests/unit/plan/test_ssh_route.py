"""A node's route from the operator's ssh config: aliases, User/Port/IdentityFile, ProxyJump,
and who wins between the plan and the config (files in tmp_path; no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omwizard.plan.model import PlanError, plan_from_dict
from omwizard.remote.sshconfig import Hop, SshConfigError, route

CONFIG = """\
Host bastion
    HostName 198.18.0.13
    User jump
    Port 2222
    IdentityFile {tmp}/bastion_key

Host inner
    HostName 198.18.0.14
    ProxyJump bastion

Host om1
    HostName 198.18.0.11
    User admin
    IdentityFile {tmp}/om_key
    ProxyJump bastion

Host om2
    HostName 198.18.0.12
    ProxyJump root@inner:22,other.example

Host loop1
    ProxyJump loop2
Host loop2
    ProxyJump loop1

Host *
    User everybody
    Port 2022
    IdentityFile {tmp}/default_key
"""


def plan(tmp: Path, *, ssh: dict[str, Any] | None = None, node: dict[str, Any] | None = None):
    data = {
        "omwizard": 1,
        "cluster": {"name": "c", "timezone": "UTC"},
        "ssh": {"config": str(tmp / "ssh_config"), **(ssh or {})},
        "nodes": [{"name": "n1", "host": "om1", "address": "198.18.0.11", "roles": ["om"],
                   **(node or {})},
                  {"name": "n2", "host": "om2", "address": "198.18.0.12"},
                  {"name": "n3", "host": "198.18.0.15"},
                  {"name": "n4", "host": "loop1", "address": "198.18.0.16"}],
        "database": {"type": "mariadb", "host": "198.18.0.11", "name": "om", "user": "om",
                     "manage": False},
        "storage": {"kind": "existing", "path": "/opt/omdata"},
    }
    return plan_from_dict(data, env={})


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "ssh_config").write_text(CONFIG.format(tmp=tmp_path))
    return tmp_path


def test_an_alias_gives_hostname_user_key_and_its_bastion(tmp: Path) -> None:
    r = route(plan(tmp).node("n1"))
    # Port: only `Host *` sets one, and the plan's ssh section beats catch-all blocks;
    # IdentityFile adds up over the matching blocks, as in OpenSSH
    assert r.target == Hop("om1", "198.18.0.11", 22, "admin",
                           (f"{tmp}/om_key", f"{tmp}/default_key"))
    assert r.jumps == (Hop("bastion", "198.18.0.13", 2222, "jump",
                           (f"{tmp}/bastion_key", f"{tmp}/default_key")),)
    assert r.config == tmp / "ssh_config"


def test_jump_chains_follow_openssh_order(tmp: Path) -> None:
    r = route(plan(tmp).node("n2"))
    assert [h.host for h in r.jumps] == ["198.18.0.13", "198.18.0.14", "other.example"]
    assert r.jumps[1].user == "root" and r.jumps[1].port == 22  # written in the entry: wins
    assert r.target.host == "198.18.0.12"


def test_the_plan_beats_catch_all_blocks_and_a_node_beats_the_config(tmp: Path) -> None:
    p = plan(tmp, ssh={"user": "ops", "port": 22, "identity": "~/.ssh/ops"})
    direct = route(p.node("n3"))  # only `Host *` matches: the plan's values
    assert direct.target.user == "ops" and direct.target.port == 22
    assert direct.target.identities[0].endswith("/.ssh/ops") and direct.jumps == ()
    aliased = route(p.node("n1"))  # its own block beats the plan's cluster-wide section
    assert aliased.target.user == "admin"
    assert aliased.target.identities == (f"{tmp}/om_key", f"{tmp}/default_key")
    own = route(plan(tmp, node={"ssh": {"user": "me", "port": 2200}}).node("n1"))
    assert own.target.user == "me" and own.target.port == 2200


def test_without_a_plan_identity_catch_all_keys_apply(tmp: Path) -> None:
    assert route(plan(tmp).node("n3")).target.identities == (f"{tmp}/default_key",)


def test_a_jump_loop_is_refused(tmp: Path) -> None:
    with pytest.raises(SshConfigError, match="loop"):
        route(plan(tmp).node("n4"))


def test_a_missing_config_file_names_the_key_and_the_fix(tmp: Path) -> None:
    with pytest.raises(SshConfigError) as err:
        route(plan(tmp, ssh={"config": str(tmp / "nope")}).node("n3"))
    assert "ssh.config" in err.value.problem and "does not exist" in err.value.problem
    assert "ssh.config" in err.value.fix


def test_a_bad_config_line_is_named(tmp: Path) -> None:
    (tmp / "ssh_config").write_text("Port notanumber\n")
    with pytest.raises(SshConfigError) as err:
        route(plan(tmp).node("n3"))
    assert "ssh_config" in err.value.problem and "ssh -G" in err.value.fix


def test_without_any_config_the_plan_is_the_route(tmp: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp / "home"))
    p = plan_from_dict({
        "omwizard": 1, "cluster": {"name": "c", "timezone": "UTC"},
        "nodes": [{"name": "n1", "host": "10.1.1.1"}, {"name": "n2", "host": "10.1.1.2"}],
        "database": {"type": "mariadb", "host": "10.1.1.1", "name": "om", "user": "om",
                     "manage": False},
        "storage": {"kind": "existing", "path": "/opt/omdata"},
    }, env={})
    r = route(p.node("n1"))
    assert r == type(r)(Hop("10.1.1.1", "10.1.1.1", 22, "root", ()), (), None)


def test_plan_ssh_config_is_validated_and_written_back(tmp: Path) -> None:
    from omwizard.plan.model import plan_to_dict

    assert plan_to_dict(plan(tmp))["ssh"]["config"] == str(tmp / "ssh_config")
    with pytest.raises(PlanError) as err:
        plan(tmp, ssh={"config": "bad\npath"})
    assert "ssh.config" in str(err.value)


def test_validate_names_a_missing_ssh_config_and_the_fix(tmp: Path) -> None:
    import subprocess
    import sys

    import yaml

    data = yaml.safe_load((Path(__file__).parents[3] / "examples" / "plan.yaml").read_text())
    data.setdefault("ssh", {})["config"] = str(tmp / "missing_config")
    (tmp / "plan.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "omwizard", "validate", str(tmp / "plan.yaml")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "ssh.config" in text and "does not exist" in text and "correct the path" in text
    data["ssh"]["config"] = str(tmp / "ssh_config")
    (tmp / "plan.yaml").write_text(yaml.safe_dump(data))
    ok = subprocess.run([sys.executable, "-m", "omwizard", "validate", str(tmp / "plan.yaml")],
                        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
