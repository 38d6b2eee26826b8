"""An OpenMeetings release for an installed omwizard: names and checksums (pure), then download,
check, cache and unpack against a real HTTP server on 127.0.0.1 (the machine is offline)."""

from __future__ import annotations

import argparse
import hashlib
import socket
from pathlib import Path

import pytest

from omwizard.cli import rehearse
from omwizard.lab import release
from omwizard.lab.omfiles import OmFilesError
from omwizard.om.release import (
    check_base,
    jar_name,
    parse_sha512,
    release_urls,
    version_from_name,
    wanted,
)
from tests.release_server import build_archive, dist_tree, serving

HEX = hashlib.sha512(b"x").hexdigest()
CLASSES = "webapps/openmeetings/WEB-INF/classes/"


# -- pure -----------------------------------------------------------------------------------

def test_release_urls_follow_the_apache_archive_layout() -> None:
    url, sha = release_urls("https://archive.apache.org/dist/", "9.1.0")
    assert url == ("https://archive.apache.org/dist/openmeetings/9.1.0/bin/"
                   "apache-openmeetings-9.1.0.tar.gz")
    assert sha == url + ".sha512"
    assert release_urls("http://m.example/apache", "4.0.11")[0].startswith(
        "http://m.example/apache/openmeetings/4.0.11/bin/")
    with pytest.raises(ValueError):
        release_urls("https://a/", "9.1.0/../../etc")


@pytest.mark.parametrize("text", [
    f"{HEX}  apache-openmeetings-9.1.0.tar.gz\n",
    f"{HEX} *apache-openmeetings-9.1.0.tar.gz\n",
    f"{HEX}\n",
    f"{HEX.upper()}\n",
    "apache-openmeetings-9.1.0.tar.gz: " + " ".join(
        HEX.upper()[i:i + 8] for i in range(0, 128, 8))[:60] + "\n   " + " ".join(
        HEX.upper()[i:i + 8] for i in range(0, 128, 8))[60:] + "\n",
])
def test_every_published_sha512_form_is_read(text: str) -> None:
    assert parse_sha512(text) == HEX


@pytest.mark.parametrize("text", ["", "not a checksum", HEX[:100], f"{HEX}\n{HEX[::-1]}\n"])
def test_anything_else_is_not_a_checksum(text: str) -> None:
    with pytest.raises(ValueError):
        parse_sha512(text)


@pytest.mark.parametrize(("member", "kept"), [
    (f"apache-openmeetings-9.1.0/{CLASSES}hazelcast.xml", f"{CLASSES}hazelcast.xml"),
    (f"{CLASSES}hazelcast.xml", f"{CLASSES}hazelcast.xml"),  # OM 4.x: no top folder
    (f"./{CLASSES}META-INF/mysql_persistence.xml", f"{CLASSES}META-INF/mysql_persistence.xml"),
    (f"x/{CLASSES}META-INF/persistence.xml", None),  # an installed one: never
    (f"x/{CLASSES}META-INF/orm.xml", None),
    (f"x/{CLASSES}log4j2.xml", None),
    ("apache-openmeetings-9.1.0/openmeetings.service", "openmeetings.service"),
    ("openmeetings.service", "openmeetings.service"),
    ("top/bin/openmeetings.service", "openmeetings.service"),
    ("top/docs/deep/openmeetings.service", None),
    (f"../{CLASSES}hazelcast.xml", None),
    (f"/{CLASSES}hazelcast.xml", None),
    (f"a/../{CLASSES}hazelcast.xml", None),
    ("top/conf/server.xml", None),
])
def test_only_what_a_rehearsal_node_reads_is_kept(member: str, kept: str | None) -> None:
    assert wanted(member) == kept


def test_jar_names_and_archive_names_give_the_version() -> None:
    assert jar_name("t/webapps/openmeetings/WEB-INF/lib/openmeetings-web-9.1.0.jar") == (
        "openmeetings-web-9.1.0.jar")
    assert jar_name("t/lib/openmeetings-web-9.1.0.jar") is None  # Tomcat's lib: not the webapp
    assert version_from_name("apache-openmeetings-7.0.0.zip") == "7.0.0"
    assert version_from_name("/x/apache-openmeetings-5.0.0-M4.tar.gz") == "5.0.0-M4"
    assert version_from_name("openmeetings.tar.gz") is None


@pytest.mark.parametrize(("base", "ok"), [
    ("https://archive.apache.org/dist/", True), ("http://127.0.0.1:8000/", True),
    ("file:///srv/mirror/", True), ("ftp://x/", False), ("archive.apache.org", False),
    ("https:///dist", False),
])
def test_mirror_addresses_are_checked(base: str, ok: bool) -> None:
    assert (check_base(base) is None) == ok


# -- download, check, cache -----------------------------------------------------------------

@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "omwizard"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_is_checked_cached_small_and_used_offline(tmp_path: Path, cache: Path) -> None:
    dist_tree(tmp_path / "dist", "9.1.0")
    seen: list[tuple[int, int | None]] = []
    with serving(tmp_path / "dist") as base:
        files = release.fetch_release("9.1.0", base, lambda d, t: seen.append((d, t)))
    assert files.version == "9.1.0" and files.origin == cache / "openmeetings" / "9.1.0"
    assert files.template("mysql") and files.template("postgresql") and files.unit
    assert files.installed == files.template("mysql")  # never an installed persistence.xml
    kept = sorted(str(p.relative_to(files.origin)) for p in files.origin.rglob("*")
                  if p.is_file())
    assert "release.json" in kept and f"{CLASSES}hazelcast.xml" in kept
    assert not [k for k in kept if k.endswith((".jar", ".sh", "server.xml", "orm.xml"))]
    assert not (cache / "downloads").exists()  # the archive itself is not kept
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 0
    # the server is gone: the cache serves
    again = release.fetch_release("9.1.0", f"http://127.0.0.1:{_free_port()}/")
    assert again == files


def test_tampered_archive_is_refused_unopened(tmp_path: Path, cache: Path) -> None:
    archive = dist_tree(tmp_path / "dist", "9.1.0")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with serving(tmp_path / "dist") as base, pytest.raises(OmFilesError) as err:
        release.fetch_release("9.1.0", base)
    assert "SHA-512" in str(err.value) and "tampered" in str(err.value)
    assert not cache.exists()  # nothing kept, not even the folders


def test_offline_with_nothing_cached_names_both_ways_out(cache: Path) -> None:
    with pytest.raises(release.ReleaseUnavailable) as err:
        release.fetch_release("9.1.0", f"http://127.0.0.1:{_free_port()}/", timeout=2)
    text = str(err.value)
    assert "--om-files" in text and "--om-mirror" in text and "OMW_OM_MIRROR" in text
    assert "\n" not in text
    assert not cache.exists()


def test_missing_release_on_the_mirror_is_said(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "dist").mkdir()
    with serving(tmp_path / "dist") as base, pytest.raises(release.ReleaseUnavailable) as err:
        release.fetch_release("9.1.0", base)
    assert "HTTP 404" in str(err.value)


@pytest.mark.parametrize(("version", "fmt", "top"), [
    ("9.1.0", "tar.gz", True), ("7.0.0", "zip", True), ("4.0.11", "tar.gz", False),
])
def test_operator_archive_is_unpacked_into_the_cache(
    tmp_path: Path, cache: Path, version: str, fmt: str, top: bool,
) -> None:
    archive = build_archive(tmp_path / "own", version, fmt=fmt, top=top)
    files = release.archive_files(archive, None)  # the version from its jars
    assert files.version == version and files.origin.is_relative_to(cache / "archives")
    assert (files.unit is None) == (version == "4.0.11")
    assert release.archive_files(archive, version).origin == files.origin  # unpacked once
    with pytest.raises(OmFilesError, match="--om-version"):
        release.archive_files(archive, "8.1.0")


def test_operator_archive_with_a_wrong_sha512_beside_it_is_refused(
    tmp_path: Path, cache: Path,
) -> None:
    archive = build_archive(tmp_path / "own", "9.1.0")
    archive.with_name(archive.name + ".sha512").write_text(HEX + "\n")
    with pytest.raises(OmFilesError, match="does not match"):
        release.archive_files(archive, None)


def test_a_source_archive_is_not_a_release(tmp_path: Path, cache: Path) -> None:
    import tarfile

    bad = tmp_path / "apache-openmeetings-9.1.0-src.tar.gz"
    with tarfile.open(bad, "w:gz") as tf:
        tf.add(__file__, arcname="apache-openmeetings-9.1.0-src/pom.xml")
    with pytest.raises(OmFilesError, match="not an OpenMeetings binary release"):
        release.archive_files(bad, "9.1.0")
    assert not list((cache / "archives").iterdir())  # the half-unpacked folder is gone


def _args(**kw: object) -> argparse.Namespace:
    base = {"om_files": None, "om_version": None, "om_mirror": None, "db": "mariadb"}
    return argparse.Namespace(**{**base, **kw})


def test_installed_copy_downloads_a_checkout_uses_its_fixtures(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not rehearse.needs_download(_args())  # this checkout has ../shared
    assert rehearse.om_files(_args()).origin.name == "9.1.0"
    monkeypatch.setenv("OMW_SHARED", str(tmp_path / "no-shared"))  # as an installed wheel
    assert rehearse.needs_download(_args(om_version="8.1.0"))
    dist_tree(tmp_path / "dist", "8.1.0")
    with serving(tmp_path / "dist") as base:
        monkeypatch.setenv("OMW_OM_MIRROR", base)
        files = rehearse.om_files(_args(om_version="8.1.0"))
    assert files.origin == cache / "openmeetings" / "8.1.0"
    assert not rehearse.needs_download(_args(om_version="8.1.0"))
    archive = build_archive(tmp_path / "own", "7.0.0", fmt="zip")
    assert rehearse.om_files(_args(om_files=str(archive))).version == "7.0.0"
    monkeypatch.setenv("OMW_OM_MIRROR", "ftp://nowhere/")
    with pytest.raises(OmFilesError, match="OMW_OM_MIRROR"):
        rehearse.om_files(_args(om_version="6.3.0"))
