"""Without root, `omwizard rehearse` says exactly what is needed and changes nothing."""

from __future__ import annotations

import argparse

import pytest

from omwizard.cli import rehearse


class Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text)


def test_not_root_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rehearse.os, "geteuid", lambda: 1000)
    built = []
    monkeypatch.setattr(rehearse, "_start", lambda *a: built.append(a))
    out = Out()
    args = argparse.Namespace(down=False, nodes=2, om_version="9.1.0", om_files=None, db="mariadb",
                              headless=True, keep=False, json=False)
    assert rehearse.rehearse(args, out) == 2
    assert built == []
    assert any("needs root" in line and "sudo" in line for line in out.lines)


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import omwizard.lab as lab

    monkeypatch.setattr(rehearse.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab, "missing_requirements", lambda: "tcpdump is missing")
    assert "tcpdump is missing" in (rehearse.requirements() or "")
    assert "setup-system.sh" in (rehearse.requirements() or "")


def test_node_count_bounds() -> None:
    out = Out()
    args = argparse.Namespace(down=False, nodes=1, om_version="9.1.0", om_files=None, db="mariadb",
                              headless=True, keep=False, json=False)
    assert rehearse.rehearse(args, out) == 2
    assert "between 2 and 8" in out.lines[0]
