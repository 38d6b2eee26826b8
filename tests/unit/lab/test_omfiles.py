"""Where rehearsal and lab nodes get their OpenMeetings files: fixtures or an operator's tree."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from omwizard.cli import rehearse
from omwizard.lab.lab import DEFAULT_VERSION
from omwizard.lab.omfiles import (
    OmFilesError,
    fixture_files,
    operator_files,
    shared_dir,
)
from omwizard.om.layout import OmLayout

FIXTURES = shared_dir() / "fixtures" / "openmeetings"
CLASSES = Path(OmLayout(".").classes)  # relative to an OpenMeetings home
LIB = Path(OmLayout(".").lib)


def install_tree(root: Path, version: str, *, jar: bool = True) -> Path:
    """An OpenMeetings home as an operator has it: webapps/openmeetings/WEB-INF/{classes,lib}."""
    src = FIXTURES / version
    classes = root / CLASSES
    (classes / "META-INF").mkdir(parents=True)
    shutil.copyfile(src / "hazelcast.xml", classes / "hazelcast.xml")
    for template in (src / "templates").glob("*_persistence.xml"):
        shutil.copyfile(template, classes / "META-INF" / template.name)
    # an installed persistence.xml carries the operator's real password: never to be used
    secret = "<persistence>Operator-Secret</persistence>"
    (classes / "META-INF" / "persistence.xml").write_text(secret)
    (root / LIB).mkdir(parents=True)
    if jar:
        (root / LIB / f"openmeetings-web-{version}.jar").touch()
        (root / LIB / "openmeetings-util-other.jar").touch()
    return root


@pytest.mark.parametrize("version", ["4.0.11", "5.0.0", "6.3.0", "7.0.0", "8.1.0", "9.1.0"])
def test_every_fixture_release_resolves(version: str) -> None:
    files = fixture_files(version)
    assert files.version == version
    assert files.hazelcast == FIXTURES / version / "hazelcast.xml"
    assert files.template("mysql") is not None and files.template("postgresql") is not None
    installed = FIXTURES / version / "persistence.xml"
    expected = installed if installed.is_file() else FIXTURES / version / "templates" / (
        "mysql_persistence.xml")
    assert files.installed == expected
    assert (files.unit is None) == (version == "4.0.11")  # OM 4.x has no systemd unit


def test_unknown_fixture_release_names_the_known_ones_and_the_fix() -> None:
    with pytest.raises(OmFilesError) as err:
        fixture_files("3.0.0")
    text = str(err.value)
    assert "3.0.0" in text and "9.1.0" in text and "--om-files" in text


def test_shared_dir_follows_omw_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMW_SHARED", str(tmp_path))
    with pytest.raises(OmFilesError, match="--om-files"):
        fixture_files("9.1.0")


def test_operator_home_is_read_with_its_version_and_without_its_password(tmp_path: Path) -> None:
    root = install_tree(tmp_path / "open700", "7.0.0")
    files = operator_files(root)
    assert files.version == "7.0.0"
    assert files.hazelcast == root / CLASSES / "hazelcast.xml"
    assert files.installed == root / CLASSES / "META-INF" / "mysql_persistence.xml"
    assert all("Operator-Secret" not in p.read_text() for p in files.templates)
    assert files.unit is None
    (root / "bin").mkdir()
    unit = root / "bin" / "openmeetings.service"
    shutil.copyfile(FIXTURES / "7.0.0" / "openmeetings.service", unit)
    assert operator_files(root).unit == root / "bin" / "openmeetings.service"


def test_classes_folder_itself_with_a_given_version(tmp_path: Path) -> None:
    root = install_tree(tmp_path / "om", "9.1.0", jar=False)
    files = operator_files(root / CLASSES, "9.1.0")
    assert files.version == "9.1.0" and files.origin == root / CLASSES


def test_operator_tree_problems_each_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(OmFilesError, match="no such directory"):
        operator_files(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OmFilesError, match="WEB-INF/classes"):
        operator_files(empty)
    nojar = install_tree(tmp_path / "nojar", "9.1.0", jar=False)
    with pytest.raises(OmFilesError, match="--om-version"):
        operator_files(nojar)
    mismatch = install_tree(tmp_path / "mismatch", "8.1.0")
    with pytest.raises(OmFilesError, match="8.1.0.*9.1.0"):
        operator_files(mismatch, "9.1.0")
    assert operator_files(mismatch, "8.1.0").version == "8.1.0"
    broken = install_tree(tmp_path / "broken", "9.1.0")
    (broken / CLASSES / "hazelcast.xml").write_text("<hazelcast><unclosed></hazelcast>")
    with pytest.raises(OmFilesError, match="not readable XML"):
        operator_files(broken)
    (broken / CLASSES / "hazelcast.xml").write_text("<beans/>")
    with pytest.raises(OmFilesError, match="not a Hazelcast configuration"):
        operator_files(broken)
    notemplates = install_tree(tmp_path / "notemplates", "9.1.0")
    (notemplates / CLASSES / "META-INF" / "mysql_persistence.xml").unlink()
    with pytest.raises(OmFilesError, match="mysql_persistence.xml"):
        operator_files(notemplates)


class Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text)


def args(**over: object) -> argparse.Namespace:
    base: dict[str, object] = dict(down=False, nodes=2, om_version=None, om_files=None,
                                   db="mariadb", headless=True, keep=False, json=False)
    base.update(over)
    return argparse.Namespace(**base)


def test_rehearse_refuses_bad_om_files_before_anything(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    built: list[object] = []
    monkeypatch.setattr(rehearse, "_start", lambda *a: built.append(a))
    out = Out()
    assert rehearse.rehearse(args(om_files=str(tmp_path / "nowhere")), out) == 2
    assert built == []
    assert "no such directory" in out.lines[0] and "Nothing was changed" in out.lines[0]


def test_rehearse_needs_the_template_of_its_database(tmp_path: Path) -> None:
    root = install_tree(tmp_path / "om", "9.1.0")
    (root / CLASSES / "META-INF" / "postgresql_persistence.xml").unlink()
    with pytest.raises(OmFilesError, match="postgresql_persistence.xml.*--db"):
        rehearse.om_files(args(om_files=str(root), db="postgresql"))
    assert rehearse.om_files(args(om_files=str(root))).version == "9.1.0"
    assert rehearse.om_files(args()).version == DEFAULT_VERSION
    assert rehearse.om_files(args(om_version="5.0.0")).version == "5.0.0"


@pytest.mark.parametrize(("error", "code", "words"), [
    ("busy", 2, "already runs on this machine"),
    ("command", 1, "could not be built: ip -n omwlab-n1 link set lo up exited 255"),
])
def test_a_failed_build_is_one_clear_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, error: str, code: int, words: str
) -> None:
    from omwizard.lab import LabBusy, LabCommandError

    def fail(*_: object) -> None:
        if error == "busy":
            raise LabBusy("lock held")
        raise LabCommandError("ip -n omwlab-n1 link set lo up exited 255: no")

    monkeypatch.setattr(rehearse, "requirements", lambda: None)
    monkeypatch.setattr(rehearse, "_start", fail)
    monkeypatch.setenv("OMW_DB_PASSWORD", "unit-test")  # rehearse sets it when unset
    out = Out()
    assert rehearse.rehearse(args(), out) == code
    assert any(words in line for line in out.lines), out.lines
