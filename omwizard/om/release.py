"""What an OpenMeetings release archive looks like, and which of its files a rehearsal needs.

Pure: names, addresses and checksums only; omwizard.lab.release does the downloading and
unpacking. Apache publishes each binary release as
``<base>/openmeetings/<V>/bin/apache-openmeetings-<V>.tar.gz`` (and ``.zip``) beside a
``.sha512`` file. Releases differ in layout (OpenMeetings 4.x archives have no top folder,
later ones have ``apache-openmeetings-<V>/``), so a member is recognised by what follows
``webapps/openmeetings/``, wherever that starts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_BASE = "https://archive.apache.org/dist/"
MIRROR_ENV = "OMW_OM_MIRROR"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")

_VERSION = re.compile(r"\d{1,3}(?:\.\d{1,4}){1,3}(?:-[A-Za-z0-9]{1,20})?")
_HEX512 = re.compile(r"[0-9a-fA-F]{128}")
_CLASSES = "webapps/openmeetings/WEB-INF/classes/"
_JAR = re.compile(r"webapps/openmeetings/WEB-INF/lib/(openmeetings-[a-z-]+-[^/]+\.jar)$")
_TEMPLATE = re.compile(r"[a-z0-9]{1,20}_persistence\.xml")
_NAME_VERSION = re.compile(
    r"apache-openmeetings-(" + _VERSION.pattern + r")(?:\.tar\.gz|\.tgz|\.zip)$")


def is_version(text: str) -> bool:
    """A release number as Apache names them (9.1.0, 4.0.11, 5.0.0-M4): safe in a URL/path."""
    return bool(_VERSION.fullmatch(text))


def archive_name(version: str) -> str:
    return f"apache-openmeetings-{version}.tar.gz"


def check_base(base: str) -> str | None:
    """Why a mirror address is unusable (None: usable). http(s) or file only."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https", "file"):
        return (f"{base!r} is not an http://, https:// or file:// address: name the folder "
                "that holds openmeetings/<version>/bin/, e.g. https://archive.apache.org/dist/")
    if parts.scheme != "file" and not parts.hostname:
        return f"{base!r} has no host name: write it as https://HOST/PATH/"
    if any(c.isspace() or ord(c) < 32 for c in base):
        return f"{base!r} holds spaces or control characters"
    return None


def release_urls(base: str, version: str) -> tuple[str, str]:
    """The archive's address and its checksum's, under an Apache dist base (or a mirror)."""
    if not is_version(version):
        raise ValueError(f"{version!r} is not an OpenMeetings release number (like 9.1.0)")
    url = f"{base.rstrip('/')}/openmeetings/{version}/bin/{archive_name(version)}"
    return url, url + ".sha512"


def parse_sha512(text: str) -> str:
    """The lowercase SHA-512 from a ``.sha512`` file, in the forms Apache projects publish:
    ``HEX  NAME``, ``HEX *NAME``, bare ``HEX``, or gpg's ``NAME: HEX HEX ...`` (grouped,
    upper case, wrapped over lines). ValueError when there is none, or more than one."""
    words = {w.lstrip("*").lower() for w in text.split()}
    found = {w for w in words if _HEX512.fullmatch(w)}
    if len(found) == 1:
        return found.pop()
    if not found and ":" in text:  # gpg --print-md SHA512 NAME
        compact = "".join(text.split(":", 1)[1].split())
        if _HEX512.fullmatch(compact):
            return compact.lower()
    raise ValueError("it holds more than one SHA-512" if found else "it holds no SHA-512")


def version_from_name(filename: str) -> str | None:
    """9.1.0 from apache-openmeetings-9.1.0.tar.gz (None for any other name)."""
    m = _NAME_VERSION.search(filename)
    return m.group(1) if m else None


def _clean(name: str) -> str | None:
    """A member path made relative, or None when it is unsafe (absolute, .., empty parts)."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if not name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None
    parts = name.split("/")
    if any(p in ("..", "") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        return None
    return name


def wanted(member: str) -> str | None:
    """Where an archive member goes in the cached tree (relative to the OpenMeetings home),
    or None when a rehearsal node does not need it. Kept: hazelcast.xml, the
    ``*_persistence.xml`` templates, the systemd unit (archive root or bin/)."""
    name = _clean(member)
    if name is None:
        return None
    at = ("/" + name).find("/" + _CLASSES)
    if at >= 0:
        rest = name[at + len(_CLASSES):]
        if rest == "hazelcast.xml":
            return _CLASSES + rest
        if rest.startswith("META-INF/") and _TEMPLATE.fullmatch(rest[len("META-INF/"):]):
            return _CLASSES + rest
        return None
    parts = name.split("/")
    if parts[-1] == "openmeetings.service" and (  # [top/]unit or [top/]bin/unit
            len(parts) <= 2 or (len(parts) == 3 and parts[1] == "bin")):
        return "openmeetings.service"
    return None


def jar_name(member: str) -> str | None:
    """The file name of an OpenMeetings jar in the webapp (its version is in the name)."""
    name = _clean(member)
    if name is None:
        return None
    m = _JAR.search(name)
    return m.group(1) if m else None
