"""The bundle's cleaning on data: every secret in every encoding, known or only by shape."""

from __future__ import annotations

import html
import tarfile
import urllib.parse
from pathlib import Path

from omwizard.engine.bundle import file_secrets, scrub, write_bundle
from omwizard.engine.redact import Redactor
from omwizard.lab import shared_dir

SECRET = "S3cr&t <pw> %41+'q\""
PERSISTENCE = (shared_dir() / "fixtures/openmeetings/9.1.0/persistence.xml").read_text()


def forms(secret: str) -> set[str]:
    return {secret, html.escape(secret), html.escape(secret, quote=False),
            html.escape(secret).replace("&#x27;", "&apos;"),
            urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


def test_redactor_masks_every_encoding() -> None:
    redact = Redactor([SECRET])
    for form in forms(SECRET):
        assert "S3cr" not in redact(f"a {form} b"), form


def test_secrets_found_in_files() -> None:
    files = {"/x/META-INF/persistence.xml": PERSISTENCE,
             "/x/openmeetings.properties": "sip.password = p4ss-word\nkurento.kuid=abc\n"}
    assert file_secrets(files) == ["Install-Pass-1", "p4ss-word"]


def test_scrub_by_shape() -> None:
    text = ("url https://om:hunter22@h/x?token=abc123&x=1\n"
            "Url=jdbc:mysql://h/db,Username=om,Password=unknown-one\n"
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEkeybody\n-----END RSA PRIVATE KEY-----\n"
            "admin.password: letmein\n")
    out = scrub(text)
    for secret in ("hunter22", "abc123", "unknown-one", "MIIEkeybody", "letmein"):
        assert secret not in out
    assert "x=1" in out and "Username=om" in out


def test_bundle_file(tmp_path: Path) -> None:
    redact = Redactor([SECRET])
    path = write_bundle(tmp_path / "b.tar.gz", {"a/log.txt": f"x {html.escape(SECRET)} y"},
                        lambda t: scrub(redact(t)), "top")
    with tarfile.open(path) as tar:
        (member,) = tar.getmembers()
        data = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert member.name == "top/a/log.txt" and "S3cr" not in data and "********" in data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
