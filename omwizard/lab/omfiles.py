"""Where a lab node's OpenMeetings files come from: the project's fixtures, or an operator's own.

The files are real OpenMeetings files (Apache License 2.0). omwizard does not carry copies of
them: a checkout reads `../shared/fixtures/openmeetings/<version>` ($OMW_SHARED overrides), and
anyone else points `omwizard rehearse --om-files DIR` at an OpenMeetings they already have (an
unpacked release, or an installed server's home). From such a tree only `hazelcast.xml` and the
`*_persistence.xml` templates are read: an installed `persistence.xml` holds a real database
password, so a rehearsal node gets the MySQL template in its place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

import omwizard
from omwizard.om.layout import OmLayout, version_from_jars, version_text

OM_FILES_HELP = (
    "pass --om-files DIR (an unpacked OpenMeetings release or an installed server's home: "
    "only hazelcast.xml and the *_persistence.xml templates are read), or run omwizard from a "
    "checkout with the project's shared/ folder beside it (or OMW_SHARED=PATH)"
)


class OmFilesError(ValueError):
    """The OpenMeetings files asked for are missing or unusable; the message says how to fix."""


@dataclass(frozen=True)
class OmFiles:
    """The files one lab node's /opt/om is laid out from."""

    origin: Path
    version: str
    hazelcast: Path
    templates: tuple[Path, ...]
    installed: Path  # the persistence.xml a node starts with
    unit: Path | None  # openmeetings.service (None: a Tomcat setenv.sh, as OM 4.x)

    def template(self, db: str) -> Path | None:
        return next((t for t in self.templates if t.name == f"{db}_persistence.xml"), None)


def shared_dir() -> Path:
    """The project's shared folder (fixtures) beside the checkout; $OMW_SHARED overrides."""
    env = os.environ.get("OMW_SHARED")
    if env:
        return Path(env)
    return Path(omwizard.__file__).resolve().parents[2] / "shared"


def fixture_files(version: str) -> OmFiles:
    """The fixture files of one release (the tests' and a checkout's rehearsal source)."""
    path = shared_dir() / "fixtures" / "openmeetings" / version
    if not (path / "hazelcast.xml").is_file():
        known = sorted(p.name for p in path.parent.glob("*") if (p / "hazelcast.xml").is_file())
        found = f" (there: {', '.join(known)})" if known else ""
        raise OmFilesError(
            f"no OpenMeetings {version} files at {path}{found}: {OM_FILES_HELP}"
        )
    return _checked(path, version, path / "hazelcast.xml", path / "templates",
                    installed=path / "persistence.xml", unit=path / "openmeetings.service")


def operator_files(root: Path, version: str | None = None) -> OmFiles:
    """The files of an OpenMeetings the operator has: its home, its release folder, or the
    WEB-INF/classes folder itself. The version is read from its jars when it has them."""
    root = root.expanduser()
    if not root.is_dir():
        raise OmFilesError(f"--om-files {root}: no such directory: {OM_FILES_HELP}")
    layout = OmLayout(str(root))
    home_classes = Path(layout.classes)
    classes = next((c for c in (home_classes, root) if (c / "hazelcast.xml").is_file()), None)
    if classes is None:
        raise OmFilesError(
            f"--om-files {root}: neither {home_classes / 'hazelcast.xml'} nor "
            f"{root / 'hazelcast.xml'} exists: point it at the OpenMeetings home (the folder "
            "with webapps/) or at WEB-INF/classes"
        )
    lib = Path(layout.lib)
    jars = version_from_jars([p.name for p in lib.iterdir()]) if lib.is_dir() else None
    detected = version_text(jars) if jars else None
    if detected and version and detected != version:
        raise OmFilesError(
            f"--om-files {root} is OpenMeetings {detected} (its jars say so) but --om-version "
            f"is {version}: drop --om-version or make them agree"
        )
    found = detected or version
    if not found:
        raise OmFilesError(
            f"--om-files {root}: its version is not known (no openmeetings-web-*.jar under "
            f"{lib}): add --om-version X.Y.Z"
        )
    unit = next((u for u in (root / "openmeetings.service", root / "bin" / "openmeetings.service")
                 if u.is_file()), None)
    return _checked(root, found, classes / "hazelcast.xml", classes / "META-INF",
                    installed=None, unit=unit)


def _checked(origin: Path, version: str, hazelcast: Path, templates_dir: Path, *,
             installed: Path | None, unit: Path | None) -> OmFiles:
    try:
        root = etree.parse(str(hazelcast), etree.XMLParser(resolve_entities=False)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise OmFilesError(f"{hazelcast} is not readable XML ({exc}): use an unmodified "
                           "OpenMeetings hazelcast.xml") from exc
    if etree.QName(root).localname != "hazelcast":
        raise OmFilesError(f"{hazelcast} is not a Hazelcast configuration (root element "
                           f"<{etree.QName(root).localname}>)")
    templates = tuple(sorted(templates_dir.glob("*_persistence.xml")))
    mysql = next((t for t in templates if t.name == "mysql_persistence.xml"), None)
    if mysql is None:
        raise OmFilesError(f"no mysql_persistence.xml in {templates_dir}: OpenMeetings keeps "
                           "its database templates there; point at a complete OpenMeetings")
    return OmFiles(
        origin=origin, version=version, hazelcast=hazelcast, templates=templates,
        installed=installed if installed is not None and installed.is_file() else mysql,
        unit=unit if unit is not None and unit.is_file() else None,
    )
