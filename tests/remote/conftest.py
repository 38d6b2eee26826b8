"""A real OpenSSH sshd on loopback, started per test module, for the SSH layer's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from omwizard.lab.loopback_sshd import LoopbackSshd as Sshd
from omwizard.lab.loopback_sshd import sshd_available, start_sshd
from tests.needs import skip_or_fail

__all__ = ["Sshd", "started_sshd"]


def started_sshd(tmp_path_factory: pytest.TempPathFactory, name: str,
                 extra_config: str = "") -> Sshd:
    """A real sshd on a free loopback port with its own host and client keys; extra_config
    lines go at the end of its sshd_config (a test's own variant of the node)."""
    reason = sshd_available()
    if reason:
        skip_or_fail(reason)
    d = tmp_path_factory.mktemp(name)
    os.chmod(d, 0o755)
    return start_sshd(d, extra_config)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with started_sshd(tmp_path_factory, "sshd",
                      "MaxStartups 100\nSubsystem sftp internal-sftp\n") as server:
        yield server
