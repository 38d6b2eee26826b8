"""The support bundle with a password sudoer, and the doctor on a certificate for another name
(issue 18).

The sudo password is a secret like the DB password: the bundle must mask it in every encoding
wherever it turns up in what the nodes hold. The log it appears in is root-only, so the bundle
could only read it through sudo with that password. Then n2's server.url is https, served by a
real TLS server with a self-signed certificate for another name: the doctor must name that on
n2 only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from omwizard.lab import Lab
from tests.lab.test_doctor_faults import FAULTY, HZ, LOG, cause_data, causes, edit, forms, sub

pytestmark = pytest.mark.lab

SUDO_USER = "omwsudo"
SUDO_PASSWORD = "Sud0 pw; & <x> %41+'q"
MARKER = "omw-bundle-sudo-marker"


@pytest.fixture(scope="module")
def sudo_lab(lab: Lab, lab_manager) -> Lab:  # noqa: ANN001
    lab_manager.get()
    lab.reset()
    for node in lab.all_nodes:
        node.add_user(SUDO_USER, password=SUDO_PASSWORD)
    yield lab
    lab.reset()


def test_bundle_redacts_the_sudo_password(sudo_lab: Lab, tmp_path: Path) -> None:
    node = sudo_lab.node("n1")
    node.run(f"mkdir -p {os.path.dirname(LOG)} && cat >> {LOG} && chown root:root {LOG} "
             f"&& chmod 0600 {LOG}", check=True,
             input="".join(f"2026-12-01 12:00:0{i} INFO {MARKER} typed [{form}]\n"
                           for i, form in enumerate(sorted(forms(SUDO_PASSWORD)))))
    plan = sudo_lab.write_plan(tmp_path / "plan.yaml", ssh={"user": SUDO_USER, "sudo": "auto"})
    out = tmp_path / "support.tar.gz"
    env = {k: v for k, v in os.environ.items() if k not in ("OMW_DB_PASSWORD",)}
    proc = subprocess.run([sys.executable, "-m", "omwizard", "bundle", str(plan), "-o", str(out),
                           "--state", str(tmp_path / "state")], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600,
                          env={**env, "OMW_SUDO_PASSWORD": SUDO_PASSWORD})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with tarfile.open(out) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                   for m in tar.getmembers() if m.isfile()}
    tail = members["nodes/n1/log-tail.txt"]
    assert tail.count(MARKER) == len(forms(SUDO_PASSWORD)), tail[-2000:]  # read through sudo
    whole = "\n".join(members.values()) + proc.stdout + proc.stderr
    for form in forms(SUDO_PASSWORD):
        assert form not in whole, form
    assert "********" in tail


TLS_DIR = "/opt/omw-tls-fault"
TLS_PORT = 5443
TLS_SERVER = """
import http.server, ssl, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"OK")
srv = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Health)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[3] + "/cert.pem", sys.argv[3] + "/key.pem")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


def test_doctor_names_a_certificate_for_another_name(sudo_lab: Lab, tmp_path: Path) -> None:
    node = sudo_lab.node(FAULTY)
    node.run(f"mkdir -p {TLS_DIR} && openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
             f"-keyout {TLS_DIR}/key.pem -out {TLS_DIR}/cert.pem -subj /CN=other.example "
             "-addext subjectAltName=DNS:other.example", check=True)
    server = node.spawn(["python3", "-c", TLS_SERVER, node.address, str(TLS_PORT), TLS_DIR],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert server.poll() is None, f"the TLS server exited {server.returncode}"
            try:
                with socket.create_connection((node.address, TLS_PORT), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the TLS server is not listening"
                time.sleep(0.05)
        url = f"https://{node.address}:{TLS_PORT}/openmeetings"
        edit(sudo_lab, HZ, sub(r'(<attribute name="server.url">)[^<]*', rf"\g<1>{url}"))
        plan = sudo_lab.write_plan(tmp_path / "plan.yaml")
        proc = subprocess.run([sys.executable, "-m", "omwizard", "doctor", str(plan), "--json",
                               "--state", str(tmp_path / "state")], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=600)
        assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
        doc = json.loads(proc.stdout)
        found = causes(doc)
        assert "server-url-certificate" in found.get(FAULTY, set()), found
        assert [n for n, codes in found.items() if "server-url-certificate" in codes] == [FAULTY]
        cause = cause_data(doc, "server-url-certificate")
        assert cause["wanted"] == node.address and "other.example" in cause["seen"], cause
        assert "server-url-no-answer" not in found[FAULTY], found  # it answered: only the name
    finally:
        server.terminate()
        server.wait(10)
        node.run(["rm", "-rf", TLS_DIR], check=True)
