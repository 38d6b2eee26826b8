"""The plan as the TUI edits it: a raw dict, the contract's defaults, the typed secrets.

Shared by the App and the inventory screen (which validates as the operator types), so that
neither imports the other.
"""

from __future__ import annotations

from typing import Any

from omwizard.plan.model import Plan, plan_from_dict

DB_PASSWORD_VAR = "OMW_DB_PASSWORD"


def new_plan_dict() -> dict[str, Any]:
    """A starting point for a new cluster: the contract's defaults, two empty nodes."""
    return {
        "omwizard": 1,
        "cluster": {"name": "", "timezone": "UTC", "om_home": "/opt/om"},
        "ssh": {"user": "root", "port": 22, "known_hosts": "~/.ssh/known_hosts",
                "host_keys": "strict", "sudo": "auto", "connect_timeout": 10},
        "nodes": [],
        "database": {"type": "mysql", "host": "", "port": 3306, "name": "openmeetings",
                     "user": "om", "password": "${" + DB_PASSWORD_VAR + "}", "manage": True},
        "network": {"join": "multicast", "multicast_group": "224.0.0.0", "multicast_port": 54327,
                    "multicast_ttl": 32, "multicast_timeout": 2, "route": "224.0.0.0/4"},
        "storage": {"kind": "nfs", "path": "/opt/omdata",
                    "export_options": "rw,sync,no_subtree_check,no_root_squash",
                    "mount_options": "timeo=50,hard,intr"},
    }


def secret_env(
    env: dict[str, str], data: dict[str, Any] | None, db_password: str
) -> dict[str, str]:
    """The environment the plan's ${VAR} references resolve in, with the typed DB password
    under the variable the plan names (memory only: the plan keeps the reference)."""
    out = dict(env)
    if db_password:
        var = DB_PASSWORD_VAR
        if data:
            ref = str(data.get("database", {}).get("password") or "")
            if ref.startswith("${") and ref.endswith("}"):
                var = ref[2:-1]
        out[var] = db_password
    return out


def validate(data: dict[str, Any], env: dict[str, str], db_password: str) -> Plan:
    """plan_from_dict with the typed secrets in the environment (raises PlanError)."""
    return plan_from_dict(data, env=secret_env(env, data, db_password))


def keep_secret_refs(plan: Plan, data: dict[str, Any]) -> None:
    """A plan whose DB password was written out in clear is edited (and saved) as a reference."""
    if not plan.database.password.ref:
        data["database"]["password"] = "${" + DB_PASSWORD_VAR + "}"
