"""Stand-in for OpenMeetings' cluster layer in lab nodes: a real Hazelcast member.

OpenMeetings is not installed in the lab. What the clustering procedure changes and what the
verify section reads is the Hazelcast layer: each OM node's `/opt/om/bin/startup.sh` starts
a real `com.hazelcast:hazelcast` member (HazelcastMemberStarter) with the node's own
`WEB-INF/classes/hazelcast.xml`, logging through slf4j-simple into
`/opt/om/logs/openmeetings.log`; `shutdown.sh` stops it. Alone it logs
"No join method is enabled! Starting standalone."; clustered, "Members {size:N, ver:M} [".
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Protocol

from .node import NODE_PRIVATE

HAZELCAST_VERSION = "5.5.0"
SLF4J_VERSION = "2.0.16"
ARTIFACTS = (
    f"com.hazelcast:hazelcast:{HAZELCAST_VERSION}",
    f"org.slf4j:slf4j-api:{SLF4J_VERSION}",
    f"org.slf4j:slf4j-simple:{SLF4J_VERSION}",
)
MAIN_CLASS = "com.hazelcast.core.server.HazelcastMemberStarter"
STANDALONE_LOG = "No join method is enabled! Starting standalone."
MEMBERS_RE = re.compile(r"Members \{size:(\d+), ver:(\d+)\} \[(.*?)\n\]", re.S)
STARTED_RE = re.compile(r"\]:\d+ is STARTED")
MARKER = "omwizard lab: stand-in for the OpenMeetings cluster layer"
FILES = Path(__file__).parent / "files"

# OpenMeetings' own systemd unit passes these (JDK_JAVA_OPTIONS); Hazelcast warns without them.
ADD_OPENS = ("--add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED "
             "--add-opens java.base/java.lang=ALL-UNNAMED "
             "--add-opens java.base/java.nio=ALL-UNNAMED "
             "--add-opens java.base/sun.nio.ch=ALL-UNNAMED "
             "--add-opens java.management/sun.management=ALL-UNNAMED "
             "--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED")
# small enough for four members on two cores
JVM_OPTS = "-Xmx96m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData"


class Node(Protocol):
    """What this module needs of a lab node (omwizard.lab.LabNode has it)."""

    name: str
    root: Path

    def run(self, cmd: list[str] | str, *, check: bool = False, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]: ...


def maven_repo() -> Path:
    """The local Maven repository the jars are cached in ($OMW_M2_REPO or ~/.m2/repository)."""
    return Path(os.environ.get("OMW_M2_REPO", "~/.m2/repository")).expanduser()


def _jar_path(artifact: str, repo: Path) -> Path:
    group, name, version = artifact.split(":")
    return repo.joinpath(*group.split("."), name, version, f"{name}-{version}.jar")


def ensure_hazelcast_jars(repo: Path | None = None) -> list[Path]:
    """The member's class path; fetched with `mvn dependency:get`, offline first."""
    repo = repo or maven_repo()
    jars = []
    for artifact in ARTIFACTS:
        jar = _jar_path(artifact, repo)
        if not jar.is_file():
            base = ["mvn", "-q", "-B", f"-Dmaven.repo.local={repo}", "dependency:get",
                    f"-Dartifact={artifact}", "-Dtransitive=false"]
            proc = subprocess.run(["mvn", "-o", *base[1:]], capture_output=True, text=True)
            if proc.returncode != 0 or not jar.is_file():
                proc = subprocess.run(base, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not jar.is_file():
                raise RuntimeError(f"could not fetch {artifact} into {repo}: "
                                   f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        jars.append(jar)
    return jars


def startup_script(jars: list[Path], om_home: str = "/opt/om") -> str:
    """bin/startup.sh: start the member in the background, pid in om.pid, log appended."""
    template = (FILES / "startup.sh.in").read_text()
    values = {
        "@MARKER@": MARKER,
        "@OM_HOME@": shlex.quote(om_home),
        "@CLASSPATH@": shlex.quote(":".join(str(j) for j in jars)),
        "@JVM_OPTS@": JVM_OPTS,
        "@ADD_OPENS@": ADD_OPENS,
        "@MAIN_CLASS@": MAIN_CLASS,
    }
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def shutdown_script(om_home: str = "/opt/om") -> str:
    """bin/shutdown.sh: stop the member from om.pid and wait until it is gone."""
    text = (FILES / "shutdown.sh.in").read_text()
    return text.replace("@MARKER@", MARKER).replace("@OM_HOME@", shlex.quote(om_home))


def _host_path(node: Node, path: str) -> Path:
    """Where a path under the node's /opt lives on the host (node.root/opt is /opt inside)."""
    rel = PurePosixPath(path).relative_to("/opt")
    return node.root / "opt" / rel


def visible_in_nodes(jars: list[Path], workdir: Path) -> list[Path]:
    """The jars at paths a node sees: ones under a node-private folder (a Maven repository in
    a user's home, say) are copied into the lab's workdir first."""
    out = []
    for jar in jars:
        resolved = jar.resolve()
        if any(resolved.is_relative_to(p) for p in NODE_PRIVATE):
            dest = workdir / "jars" / resolved.name
            dest.parent.mkdir(mode=0o755, exist_ok=True)
            if not dest.is_file():
                shutil.copyfile(resolved, dest)
            resolved = dest
        out.append(resolved)
    return out


def install_hazelcast_standin(node: Node, jars: list[Path], om_home: str = "/opt/om") -> None:
    """Write startup.sh and shutdown.sh into the node's <om_home>/bin (through node.root)."""
    bin_dir = _host_path(node, f"{om_home}/bin")
    bin_dir.mkdir(parents=True, exist_ok=True)
    _host_path(node, f"{om_home}/logs").mkdir(parents=True, exist_ok=True)
    for name, text in (("startup.sh", startup_script(jars, om_home)),
                       ("shutdown.sh", shutdown_script(om_home))):
        path = bin_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(path)


def standin_installed(node: Node, om_home: str = "/opt/om") -> bool:
    path = _host_path(node, f"{om_home}/bin/startup.sh")
    return path.is_file() and MARKER in path.read_text()


def log_path(node: Node, om_home: str = "/opt/om") -> Path:
    """The node's openmeetings.log as seen from the host."""
    return _host_path(node, f"{om_home}/logs/openmeetings.log")


def read_log(node: Node, om_home: str = "/opt/om") -> str:
    path = log_path(node, om_home)
    return path.read_text(errors="replace") if path.is_file() else ""


def start_member(node: Node, om_home: str = "/opt/om") -> None:
    """Run the node's startup.sh inside the node, as an operator would."""
    node.run([f"{om_home}/bin/startup.sh"], check=True, timeout=30)


def stop_member(node: Node, om_home: str = "/opt/om") -> None:
    node.run([f"{om_home}/bin/shutdown.sh"], check=True, timeout=60)


def member_pid(node: Node, om_home: str = "/opt/om") -> int | None:
    """The running member's pid from om.pid, or None."""
    proc = node.run(f"p=$(cat {shlex.quote(om_home + '/om.pid')} 2>/dev/null) && "
                    "kill -0 \"$p\" 2>/dev/null && echo \"$p\"")
    out = proc.stdout.strip()
    return int(out) if out.isdigit() else None


def wait_for_log(node: Node, pattern: str | re.Pattern[str], timeout: float = 60,
                 om_home: str = "/opt/om", start: int = 0) -> re.Match[str]:
    """Poll the node's log (from offset `start`) until `pattern` matches; bounded wait."""
    regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout
    while True:
        text = read_log(node, om_home)[start:]
        match = regex.search(text)
        if match:
            return match
        if time.monotonic() > deadline:
            raise TimeoutError(f"[{node.name}] no {regex.pattern!r} in {log_path(node, om_home)} "
                               f"after {timeout}s; log tail:\n{text[-3000:]}")
        time.sleep(0.2)


def members(log_text: str) -> list[list[str]]:
    """Every `Members {size:N, ver:M} [...]` block of a log: the member addresses listed."""
    return [re.findall(r"Member \[([\d.]+)\]:\d+", m.group(3))
            for m in MEMBERS_RE.finditer(log_text)]
