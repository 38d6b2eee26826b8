"""Where OpenMeetings keeps things under its install dir (om_home), per release."""

from __future__ import annotations

import re
from dataclasses import dataclass

# systemd: where OpenMeetings' unit may live (systemd prefers the first found), and the folder
# of drop-ins merged into it (omwizard writes its own there: configs.javaopts.DROPIN_PATH)
UNIT = "openmeetings"
UNIT_FILES = (
    "/etc/systemd/system/openmeetings.service",
    "/lib/systemd/system/openmeetings.service",
    "/usr/lib/systemd/system/openmeetings.service",
)
DROPIN_DIR = "/etc/systemd/system/openmeetings.service.d"

JAR_VERSION = re.compile(r"openmeetings-[a-z-]+?-(\d+)\.(\d+)\.(\d+)(?:-[A-Za-z0-9.]+)?\.jar$")


@dataclass(frozen=True)
class OmLayout:
    om_home: str

    @property
    def webapp(self) -> str:
        return f"{self.om_home}/webapps/openmeetings"

    @property
    def classes(self) -> str:
        return f"{self.webapp}/WEB-INF/classes"

    @property
    def hazelcast_xml(self) -> str:
        return f"{self.classes}/hazelcast.xml"

    @property
    def persistence_xml(self) -> str:
        return f"{self.classes}/META-INF/persistence.xml"

    @property
    def lib(self) -> str:
        return f"{self.webapp}/WEB-INF/lib"

    @property
    def bin(self) -> str:
        return f"{self.om_home}/bin"

    def log_file(self, version: tuple[int, int, int] | None = None) -> str:
        """OM 4.0.x logs to log/, later releases to logs/."""
        folder = "log" if version is not None and version[:2] == (4, 0) else "logs"
        return f"{self.om_home}/{folder}/openmeetings.log"


def version_from_jars(names: list[str]) -> tuple[int, int, int] | None:
    """The OpenMeetings release from WEB-INF/lib jar names (openmeetings-web-9.1.0.jar)."""
    found = []
    for name in names:
        match = JAR_VERSION.search(name.strip().rsplit("/", 1)[-1])
        if match:
            found.append(tuple(int(g) for g in match.groups()))
    if not found:
        return None
    return max(found)  # type: ignore[return-value]


def version_text(version: tuple[int, int, int] | None) -> str:
    return "unknown" if version is None else ".".join(str(v) for v in version)
