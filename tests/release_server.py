"""A stand-in for the Apache distribution archive: a release archive built from the fixtures in
a real release's layout, served by a real HTTP server on 127.0.0.1 (the machine is offline).

A binary release (apache-openmeetings-V.tar.gz) unpacks to apache-openmeetings-V/ holding
Tomcat (bin/, conf/, lib/), the webapp at webapps/openmeetings/ with WEB-INF/classes/
(hazelcast.xml, META-INF/*_persistence.xml) and WEB-INF/lib/openmeetings-*-V.jar, the scripts
of openmeetings-server/src/main/assembly/scripts (admin.sh, openmeetings.service) at the top,
and LICENSE, NOTICE.md, README.md, CHANGELOG.md. OpenMeetings 4.x archives have no top folder.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omwizard.lab.omfiles import shared_dir

FIXTURES = shared_dir() / "fixtures" / "openmeetings"


def release_members(version: str, *, top: bool = True) -> dict[str, bytes]:
    """Archive path -> content of a release built from the fixtures of `version`."""
    src = FIXTURES / version
    prefix = f"apache-openmeetings-{version}/" if top else ""
    web = prefix + "webapps/openmeetings/"
    files: dict[str, bytes] = {
        web + "WEB-INF/classes/hazelcast.xml": (src / "hazelcast.xml").read_bytes(),
        web + "WEB-INF/classes/log4j2.xml": b"<Configuration/>\n",
        web + "WEB-INF/classes/META-INF/orm.xml": b"<entity-mappings/>\n",
        web + "WEB-INF/web.xml": b"<web-app/>\n",
        web + f"WEB-INF/lib/openmeetings-web-{version}.jar": b"PK\x05\x06" + b"\0" * 18,
        web + f"WEB-INF/lib/openmeetings-db-{version}.jar": b"PK\x05\x06" + b"\0" * 18,
        web + "WEB-INF/lib/wicket-core-9.0.0.jar": b"PK\x05\x06" + b"\0" * 18,
        web + "public/favicon.ico": b"\0\0\1\0",
        prefix + "webapps/ROOT/index.html": b"<html></html>\n",
        prefix + "bin/catalina.sh": b"#!/bin/sh\n",
        prefix + "bin/startup.sh": b"#!/bin/sh\n",
        prefix + "conf/server.xml": b"<Server/>\n",
        prefix + "conf/localhost.jks": b"\xfe\xed\xfe\xed",
        prefix + "lib/catalina.jar": b"PK\x05\x06" + b"\0" * 18,
        prefix + "admin.sh": b"#!/bin/sh\n",
        prefix + "LICENSE": b"Apache License 2.0\n",
        prefix + "NOTICE.md": b"Apache OpenMeetings\n",
        prefix + "README.md": b"# Apache OpenMeetings\n",
        prefix + "CHANGELOG.md": b"# Changelog\n",
    }
    for template in sorted((src / "templates").glob("*_persistence.xml")):
        files[web + "WEB-INF/classes/META-INF/" + template.name] = template.read_bytes()
    if (src / "openmeetings.service").is_file():
        files[prefix + "openmeetings.service"] = (src / "openmeetings.service").read_bytes()
    return files


def build_archive(dest: Path, version: str, *, fmt: str = "tar.gz", top: bool = True) -> Path:
    """apache-openmeetings-V.tar.gz (or .zip) in `dest`, with its .sha512 beside it."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"apache-openmeetings-{version}.{fmt}"
    members = release_members(version, top=top)
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            dirs: set[str] = set()
            for name, data in members.items():
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        info = tarfile.TarInfo(d)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tf.addfile(info)
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
                tf.addfile(info, io.BytesIO(data))
    digest = hashlib.sha512(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha512").write_text(f"{digest} *{path.name}\n")
    return path


def dist_tree(root: Path, version: str) -> Path:
    """<root>/openmeetings/V/bin/apache-openmeetings-V.tar.gz (+ .sha512), as on the archive."""
    return build_archive(root / "openmeetings" / version / "bin", version)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a free port) serving `root`; yields its base URL."""
    handler = lambda *a, **kw: _Quiet(*a, directory=os.fspath(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
