"""The command line's outside: exit codes and messages for bad input; nothing is contacted."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

PLAN = {
    "omwizard": 1,
    "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
    "nodes": [
        {
            "name": "om1",
            "host": "192.0.2.1",
            "roles": ["om", "storage"],
            "server_url": "https://om1.example.org/openmeetings",
        },
        {"name": "om2", "host": "192.0.2.2", "server_url": "https://om2.example.org/openmeetings"},
    ],
    "database": {
        "type": "mysql",
        "host": "192.0.2.1",
        "name": "openmeetings",
        "user": "om",
        "password": "${OMW_DB_PASSWORD}",
        "manage": False,
    },
}


def omw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, **(env or {})}
    full.pop("OMW_DB_PASSWORD", None)
    return subprocess.run(
        [sys.executable, "-m", "omwizard", *args],
        capture_output=True,
        text=True,
        env=full,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_ok(tmp_path: Path) -> None:
    result = omw("validate", str(write(tmp_path, PLAN)))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "prod" in result.stdout


def test_validate_json(tmp_path: Path) -> None:
    result = omw("validate", str(write(tmp_path, PLAN)), "--json")
    assert json.loads(result.stdout)["valid"] is True


def test_invalid_plan_exit_2_names_key_and_fix(tmp_path: Path) -> None:
    bad = {**PLAN, "database": {**PLAN["database"], "type": "h2"}}
    for command in ("validate", "check", "apply"):
        extra = () if command == "validate" else ("--yes",)
        result = omw(command, str(write(tmp_path, bad)), *extra)
        assert result.returncode == 2
        assert "database.type" in result.stdout
        assert "H2" in result.stdout


def test_unknown_node_is_a_usage_error(tmp_path: Path) -> None:
    result = omw("check", str(write(tmp_path, PLAN)), "--node", "om9", "--section", "network")
    assert result.returncode == 2
    assert "om9" in result.stdout and "om1" in result.stdout


def test_apply_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    result = omw("apply", str(write(tmp_path, PLAN)), "--section", "network")
    assert result.returncode == 2
    assert "--yes" in result.stdout


def test_missing_db_password_without_terminal_says_how(tmp_path: Path) -> None:
    result = omw(
        "check",
        str(write(tmp_path, PLAN)),
        "--section",
        "database",
        "--state",
        str(tmp_path / "state"),
    )
    assert result.returncode == 2
    assert "OMW_DB_PASSWORD" in result.stdout


def test_missing_plan_file(tmp_path: Path) -> None:
    result = omw("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read" in result.stdout


def test_bad_section_is_argparse_error(tmp_path: Path) -> None:
    result = omw("check", str(write(tmp_path, PLAN)), "--section", "bogus")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_redactor_masks_secrets_without_mangling_text() -> None:
    from omwizard.engine.redact import Redactor

    red = Redactor(["x", "Pa&ss<word>"])
    assert red("exit 1; pw=x") == "exit 1; pw=********"
    assert red("Password=Pa&amp;ss&lt;word&gt;") == "Password=********"
    assert red("Pa&ss<word>") == "********"


# -- the session's outside: JSON document, lock, interruption (loopback only) ------------------


@contextlib.contextmanager
def dead_port(*, listen: bool = False) -> Iterator[int]:
    """A loopback port that refuses connections, or (listen) accepts them and never answers."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        if listen:
            sock.listen(8)
        yield sock.getsockname()[1]


def loopback_plan(tmp_path: Path, port: int, *, connect_timeout: int = 2) -> Path:
    data = json.loads(json.dumps(PLAN))
    data["ssh"] = {"port": port, "known_hosts": str(tmp_path / "known_hosts"),
                   "connect_timeout": connect_timeout}
    data["nodes"][0]["host"] = "127.0.0.1"
    data["nodes"][1]["host"] = "127.0.0.2"
    data["database"]["host"] = "127.0.0.1"
    return write(tmp_path, data)


def test_check_json_document_and_released_lock(tmp_path: Path) -> None:
    """Nodes that refuse SSH: every result failed, the contract's document, exit 1, and the
    session state unlocked again (another wizard can take it)."""
    from omwizard.engine.state import StateStore

    state = tmp_path / "state"
    with dead_port() as port:
        result = omw("check", str(loopback_plan(tmp_path, port)), "--section", "preflight",
                     "--json", "--state", str(state))
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc) == ["omwizard", "command", "cluster", "results", "summary"]
    assert (doc["omwizard"], doc["command"], doc["cluster"]) == (1, "check", "prod")
    assert doc["results"] and {r["status"] for r in doc["results"]} == {"failed"}
    assert {r["node"] for r in doc["results"]} == {"om1", "om2"}
    assert doc["summary"] == {"ok": 0, "changed": 0, "needs_change": 0,
                              "failed": len(doc["results"]), "skipped": 0}
    assert "✗ failed" in result.stderr and f"{len(doc['results'])} failed" in result.stderr
    assert (state / "lock").read_text() == ""
    with StateStore(state) as store:
        assert store.locked and len(store.results()) == len(doc["results"])


def test_locked_state_names_the_plans_cluster(tmp_path: Path) -> None:
    from omwizard.engine.state import StateStore

    folder = tmp_path / "not-the-cluster-name"
    with StateStore(folder), dead_port() as port:
        plan = str(loopback_plan(tmp_path, port))
        for args in (("check", plan, "--section", "preflight"),
                     ("export", plan, "-o", str(tmp_path / "export.yaml"))):
            result = omw(*args, "--state", str(folder))
            assert result.returncode == 1, result.stdout
            assert result.stdout.startswith("error: another omwizard (pid "), result.stdout
            assert "is working on cluster prod; wait for it or stop it" in result.stdout
    assert not (tmp_path / "export.yaml").exists()


def test_interrupted_check_exits_3_and_unlocks(tmp_path: Path) -> None:
    """SIGTERM while a node hangs in the SSH handshake: exit 3, the resume hint, no lock left."""
    import os
    import signal
    import time

    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
    with dead_port(listen=True) as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omwizard", "check",
             str(loopback_plan(tmp_path, port, connect_timeout=60)),
             "--section", "preflight", "--state", str(state)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while not (state / "meta.json").exists():  # the check has begun (lock held)
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.05)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 3, out + err
    assert "interrupted: the journal keeps what was done" in out
    assert (state / "lock").read_text() == ""
