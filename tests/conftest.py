"""Test-wide fixtures: the namespaced lab (LAB.md) and the `lab` marker.

Tests marked `lab` need root and the lab's tools; without them they are skipped with the
reason, unless OMW_LAB=required (CI), which turns that skip into a failure. The lab is built
once per session, on first use, and torn down at the end, also after failures, Ctrl-C or
SIGTERM. Unit tests never build it.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path

import pytest

from omwizard.lab import Lab, build_lab, missing_requirements, shared_dir
from tests.needs import skip_or_fail

SESSION_NODES = 3
SESSION_VERSION = "9.1.0"
# seconds to wait while another test session on this machine holds the one lab slot
LAB_WAIT = float(os.environ.get("OMW_LAB_WAIT", "600"))


def pytest_configure(config: pytest.Config) -> None:
    fixtures = shared_dir() / "fixtures" / "openmeetings"
    if not (fixtures / "Clustering.xml").is_file():  # one clear line, not 170 failures
        raise pytest.UsageError(
            f"the project's shared fixtures are not at {fixtures}: the checkout must sit "
            "beside the shared/ folder (or set OMW_SHARED=/path/to/shared)")
    config.addinivalue_line(
        "markers", "lab: needs root and the namespaced test lab "
        "(OMW_LAB=required turns a skip into a failure)")
    config.addinivalue_line(
        "markers", "lab_build: builds and tears down a lab of its own; runs before the others")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that build their own lab run first, before the session lab exists."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("lab_build") else 1)


def require_lab() -> None:
    """Skip (or, with OMW_LAB=required, fail) when the lab cannot be built here."""
    reason = missing_requirements()
    if reason:
        skip_or_fail(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("lab") or item.get_closest_marker("lab_build"):
        require_lab()


class LabManager:
    """Owns the session lab: built on first use, torn down once, rebuildable in place."""

    def __init__(self) -> None:
        self.lab: Lab | None = None
        self.live = False

    def get(self) -> Lab:
        if not self.live:
            fresh = build_lab(n_nodes=SESSION_NODES, om_versions=SESSION_VERSION,
                              wait=LAB_WAIT)
            if self.lab is None:
                self.lab = fresh
            else:  # same object for fixtures that already hold it
                self.lab.__dict__.update(fresh.__dict__)
            self.live = True
        assert self.lab is not None
        return self.lab

    def suspend(self) -> bool:
        """Tear the session lab down (so a test can build its own); True if it was up."""
        was_live = self.live
        self.close()
        return was_live

    def close(self) -> None:
        if self.live and self.lab is not None:
            self.live = False
            self.lab.teardown()


_MANAGER = LabManager()
atexit.register(_MANAGER.close)


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    _MANAGER.close()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _on_sigterm)


@pytest.fixture(scope="session")
def lab_manager() -> LabManager:
    return _MANAGER


@pytest.fixture(scope="session")
def lab(lab_manager: LabManager):
    """The session lab: n1..n3 (OpenMeetings 9.1.0 files) and db; see omwizard.lab."""
    require_lab()
    try:
        yield lab_manager.get()
    finally:
        lab_manager.close()


@pytest.fixture
def fresh_lab(lab: Lab, lab_manager: LabManager) -> Lab:
    """The session lab, reset to its pristine state before the test."""
    lab_manager.get()  # rebuilt if a lab_build test took it down
    lab.reset()
    return lab


@pytest.fixture
def lab_plan(fresh_lab: Lab, tmp_path: Path) -> Path:
    """A plan file for the (fresh) lab, as the operator would write it."""
    return fresh_lab.write_plan(tmp_path / "plan.yaml")


@pytest.fixture
def own_lab_slot(lab_manager: LabManager):
    """Frees the machine's one lab slot for a test that builds its own lab; restores after."""
    was_live = lab_manager.suspend()
    yield
    if was_live:
        lab_manager.get()
