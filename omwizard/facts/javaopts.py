"""Where an OM node's JAVA_OPTS come from: the files, whether systemd runs, what is in force."""

from __future__ import annotations

from dataclasses import dataclass

from omwizard.configs.javaopts import DROPIN_PATH, effective_java_opts
from omwizard.facts.base import Fact, Files, StepData
from omwizard.om.layout import UNIT_FILES, OmLayout

SYSTEMD_PROBE = (
    "command -v systemctl >/dev/null 2>&1 && s=$(systemctl is-system-running 2>/dev/null); "
    'case "$s" in running|degraded|starting|maintenance) echo systemd;; *) echo none;; esac'
)

# systemd runs the node (so a unit change needs `systemctl daemon-reload`)
SYSTEMD_RUNNING: Fact[bool] = Fact(
    "systemd_running", lambda _plan, _node: SYSTEMD_PROBE, lambda out: out.strip() == "systemd",
    stable=True,
)


@dataclass
class JavaOptsSource:
    """What a node's JAVA_OPTS are made of."""

    unit_path: str | None
    unit: str | None
    dropin: str | None
    setenv_path: str
    setenv: str | None
    systemd_running: bool

    @property
    def where(self) -> str:
        return f"systemd unit {self.unit_path}" if self.unit_path else self.setenv_path

    @property
    def effective(self) -> list[str]:
        return effective_java_opts(self.unit, self.dropin, self.setenv)


@dataclass(frozen=True)
class JavaOptsState(StepData):
    """Whether the wanted JVM options are in force, where JAVA_OPTS live, what is missing."""

    kind = "java-opts"
    where: str
    missing: tuple[str, ...] = ()


# every file JAVA_OPTS can come from (sections/_javaopts.locate reads them): the unit files,
# omwizard's drop-in and Tomcat's setenv.sh
JAVA_OPTS_FILES = Files(
    "java_opts_files",
    lambda plan, _node: [*UNIT_FILES, DROPIN_PATH,
                         f"{OmLayout(plan.cluster.om_home).bin}/setenv.sh"],
)
