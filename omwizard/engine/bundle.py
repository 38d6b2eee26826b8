"""The support bundle: what a maintainer asks for in a bug report, with every secret removed.

Per node: OpenMeetings' config files (hazelcast.xml, persistence.xml, openmeetings.properties,
the unit and its drop-ins, setenv.sh), the JVM's command line, the jar list, the log tail and
the health answer; for the cluster: the plan, and the `check` and `doctor` results (the
contract's JSON) with the doctor's matrix. Everything passes through `clean`: the session's
redactor (the plan's DB and admin passwords, a typed sudo password, every password found in
the nodes' files; raw, XML-escaped and URL-encoded) and `scrub` (passwords in connection
properties and URLs, tokens in URL parameters, private keys), whether or not their values are
known.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from lxml import etree

from omwizard.configs.persistence import CONNECTION_PROPERTY, parse_connection_properties
from omwizard.engine.catalog import SECTIONS
from omwizard.engine.doctor import matrix, matrix_table, run_doctor
from omwizard.engine.files import missing_folder, write_atomically
from omwizard.engine.step import Result, StepContext
from omwizard.facts.doctor import PROPERTIES_FILE, parse_snapshot, snapshot_command
from omwizard.facts.verify import health_target
from omwizard.plan.model import Node, dump_plan
from omwizard.remote.results import RemoteError

if TYPE_CHECKING:
    from omwizard.engine.session import Session

MASK = "********"
SECRET_SECTIONS = ("database", "verify")  # their checks log in with the DB password
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----",
                          re.S)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"'<>]+:)([^@\s/\"'<>]+)@")
_PARAM_SECRET = re.compile(
    r"((?:[?&;,\s\"']|&amp;|^)(?:access_token|token|api[_-]?key|key|secret|password|passwd|pwd|"
    r"sig|signature|auth)=)([^&;,\s\"'<>]+)", re.I | re.M)
_PROPERTY_SECRET = re.compile(r"^(\s*[\w.-]*(?:password|passwd|secret|token)[\w.-]*\s*[=:]\s*)"
                              r"(\S.*)$", re.I | re.M)


def scrub(text: str) -> str:
    """Secrets recognised by their shape, whatever their value: private keys, passwords in
    URLs and connection properties, tokens in URL parameters, *password* properties."""
    text = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY----- {MASK} "
                                      f"-----END {m.group(1)}PRIVATE KEY-----", text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _PARAM_SECRET.sub(lambda m: m.group(1) + MASK, text)
    return _PROPERTY_SECRET.sub(lambda m: m.group(1) + MASK, text)


def file_secrets(files: dict[str, str]) -> list[str]:
    """Secret values held in a node's files: persistence.xml's Password, and the values of
    *password*/*secret*/*token* keys in openmeetings.properties."""
    out: list[str] = []
    for path, text in files.items():
        if path.endswith("persistence.xml"):
            try:
                root = etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False))
            except etree.XMLSyntaxError:
                continue
            for prop in root.iter("{*}property", "property"):
                if prop.get("name") == CONNECTION_PROPERTY:
                    for key, value in parse_connection_properties(prop.get("value") or ""):
                        if key.lower() == "password" and value:
                            out.append(value)
        elif path.endswith(PROPERTIES_FILE):
            out += [m.group(2).strip() for m in _PROPERTY_SECRET.finditer(text)]
    return out


def _flat(path: str) -> str:
    return path.strip("/").replace("/", "%")


async def _node_files(ctx: StepContext, node: Node) -> tuple[dict[str, str], list[str]]:
    """One node's part of the bundle ({name in the bundle: text}) and the secrets found."""
    home = ctx.plan.cluster.om_home
    tls, port, prefix = health_target(node)
    url = (node.server_url or f"http://{node.address}:{port}{prefix}").rstrip("/")
    health = f"{'https' if tls else 'http'}://{node.address}:{port}{prefix}/services/info/health"
    parts = {
        "snapshot": snapshot_command(home),
        "health": f"curl -sS -k --max-time 5 -i {shlex.quote(health)} 2>&1; true",
    }
    try:
        got = await ctx.run_parts(node, parts)
    except RemoteError as exc:
        return {"error.txt": f"{exc.message}\n{exc.remedy}\n"}, []
    snap = parse_snapshot(got["snapshot"].stdout)
    out = {f"files/{_flat(p)}": text for p, text in snap.files.items()}
    out["jars.txt"] = "\n".join(snap.jars) + "\n"
    out["jvm-cmdline.txt"] = "".join(f"pid {p.pid} cwd {p.cwd}\n" + "\n".join(p.argv) + "\n\n"
                                     for p in snap.processes) or "no OpenMeetings JVM running\n"
    out["log-tail.txt"] = f"# {snap.log_path or 'no openmeetings.log found'}\n{snap.log}"
    out["health.txt"] = f"# GET {health} (server.url {url}), from the node itself\n" \
                        f"{got['health'].stdout}"
    out["addresses.txt"] = "\n".join(f"{a.interface} {a.ip} {a.kind}"
                                     for a in snap.addresses) + "\n"
    return out, file_secrets(snap.files)


async def collect(session: Session, *, with_secrets: bool) -> tuple[dict[str, str],
                                                                      Callable[[str], str]]:
    """Every file of the bundle ({path in the archive: text}, not yet cleaned) and the
    cleaner that knows every secret found."""
    plan = session.plan
    ctx = StepContext(plan, session.pool, None, session.bus, redact=session.redact)
    files: dict[str, str] = {}
    for node in plan.om_nodes:
        got, secrets = await _node_files(ctx, node)
        for secret in secrets:
            session.redact.add(secret)
        files.update({f"nodes/{node.name}/{k}": v for k, v in got.items()})
    sections = [s for s in SECTIONS if with_secrets or s not in SECRET_SECTIONS]
    engine = session.engine(sections)
    checked: list[Result] = await engine.check()
    doctored = await run_doctor(session.engine(sections=[]))
    files["check.json"] = json.dumps(session.document("check", checked), indent=1)
    doc = session.document("doctor", doctored)
    rows = matrix(doctored)
    doc["matrix"] = [r.to_json() for r in rows]
    files["doctor.json"] = json.dumps(doc, indent=1)
    files["matrix.txt"] = "\n".join("\t".join(line) for line in matrix_table(rows)) + "\n"
    files["plan.yaml"] = dump_plan(plan)
    skipped = [] if with_secrets else list(SECRET_SECTIONS)
    files["README.txt"] = (
        f"omwizard support bundle for cluster {plan.cluster.name}, "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        "Every secret is replaced by ********.\n"
        + (f"Not checked (no DB password given): sections {', '.join(skipped)}\n"
           if skipped else ""))

    def clean(text: str) -> str:
        return scrub(session.redact(text))

    return files, clean


def write_bundle(path: Path, files: dict[str, str], clean: Callable[[str], str],
                 top: str) -> Path:
    """A tar.gz of the cleaned files under `top/`, written atomically, mode 0600."""
    if (folder := missing_folder(path)) is not None:
        raise OSError(f"cannot write {path}: the folder {folder} does not exist")

    def pack(raw: BinaryIO) -> None:
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            now = time.time()
            for name, text in sorted(files.items()):
                data = clean(text).encode("utf-8", errors="replace")
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size, info.mtime, info.mode = len(data), int(now), 0o600
                tar.addfile(info, io.BytesIO(data))

    return write_atomically(path, pack)

