"""Installed like any tool: the wheel, built from this source and installed into a fresh venv
outside the checkout, runs --help, check, the TUI and a rehearsal from any folder. The
rehearsal fetches OpenMeetings from a (local, real) Apache dist mirror, checks its SHA-512,
caches it, works again with the mirror gone, and refuses a tampered archive before building.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from omwizard.lab.lab import LOCK_FILE
from tests.release_server import dist_tree, serving

pytestmark = pytest.mark.lab_build

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("omwizard", "pyproject.toml", "README.md", "LICENSE")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this source, installed into a fresh venv; its bin/."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"
    src.mkdir()
    for name in SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    wheels = base / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                  str(src)], cwd=base)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheel = next(wheels.glob("omwizard-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "omwizard/tui/assets/omwizard.tcss" in names  # package data is in the wheel
    assert "omwizard/lab/files/startup.sh.in" in names
    assert not [n for n in names if n.endswith(("hazelcast.xml", "_persistence.xml",
                                                "openmeetings.service"))]
    assert not [n for n in names if "fixtures" in n or n.startswith("tests/")]
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    assert made.returncode == 0, made.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    got = _run([*pip, str(wheel)], cwd=base)  # its dependencies from the package index
    if got.returncode != 0:  # an offline machine: the dependencies this test runs with
        got = _run([*pip, "--no-deps", str(wheel)], cwd=base)
        site = next((venv / "lib").glob("python3*/site-packages"))
        deps = [p for p in sys.path if p.endswith("site-packages")]
        (site / "omwizard-test-deps.pth").write_text("\n".join(deps) + "\n")
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    return venv / "bin"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """An operator's environment: no checkout on the path, no project variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMW_", "PYTHON", "VIRTUAL_ENV", "XDG_"))}
    env.update({"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_STATE_HOME": str(tmp / "state"),
                "OMW_LAB_WAIT": "900", **extra})
    return env


def test_help_check_and_tui_work_from_any_folder(installed: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    where = _run([str(installed / "python"), "-c", "import omwizard; print(omwizard.__file__)"],
                 cwd=tmp_path, env=env)
    assert str(installed.parent) in where.stdout and str(ROOT) not in where.stdout
    helped = _run([str(installed / "omwizard"), "--help"], cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "rehearse" in helped.stdout
    plan = ROOT / "examples" / "plan.yaml"
    shutil.copy(plan, tmp_path / "plan.yaml")
    valid = _run([str(installed / "omwizard"), "validate", "plan.yaml"], cwd=tmp_path, env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    checked = _run([str(installed / "omwizard"), "check", "--help"], cwd=tmp_path, env=env)
    assert checked.returncode == 0 and "--section" in checked.stdout
    tui = (
        "import asyncio\n"
        "from omwizard.tui.app import OmWizardApp\n"
        "async def main():\n"
        "    app = OmWizardApp()\n"
        "    async with app.run_test() as pilot:\n"
        "        await pilot.pause()\n"
        "        print(type(app.screen).__name__, len(app.stylesheet.rules))\n"
        "asyncio.run(main())\n"
    )
    shown = _run([str(installed / "python"), "-c", tui], cwd=tmp_path, env=env, timeout=120)
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-3000:]
    screen, rules = shown.stdout.split()
    assert screen == "WelcomeScreen" and int(rules) > 0  # the wheel's CSS was found


def _members_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout[proc.stdout.index('{"omwizard"'):].splitlines()[0])
    members = [r for r in doc["results"]
               if (r["section"], r["step"]) == ("verify", "members") and r["status"] != "skipped"]
    assert {r["node"] for r in members} == {"n1", "n2"}
    assert all(r["status"] == "ok" for r in members), members
    assert doc["summary"]["failed"] == 0


def test_rehearsal_downloads_checks_caches_and_runs_offline(
    installed: Path, tmp_path: Path, own_lab_slot: None,
) -> None:
    dist_tree(tmp_path / "dist", "9.1.0")
    rehearse = [str(installed / "omwizard"), "rehearse", "--nodes", "2", "--headless", "--json"]
    with serving(tmp_path / "dist") as base:
        first = _run(rehearse, cwd=tmp_path, env=_env(tmp_path, OMW_OM_MIRROR=base),
                     timeout=1500)
    _members_ok(first)
    assert "OpenMeetings 9.1.0" in first.stderr  # the download's progress bar
    cached = tmp_path / "cache" / "omwizard" / "openmeetings" / "9.1.0"
    assert (cached / "release.json").is_file()
    assert sum(p.stat().st_size for p in cached.rglob("*") if p.is_file()) < 1 << 20
    # the mirror is gone (its port closed): the cache serves the second rehearsal
    second = _run(rehearse, cwd=tmp_path, env=_env(tmp_path, OMW_OM_MIRROR=base),
                  timeout=1500)
    _members_ok(second)


@contextlib.contextmanager
def holding_lab_slot() -> Iterator[None]:
    """The machine's one lab slot, held by this test: a rehearsal that got as far as building
    would be refused as busy, so a refusal for another reason proves nothing was built."""
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + 900
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the lab slot stayed busy for 900 s"
                time.sleep(1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def test_tampered_release_is_refused_before_anything_is_built(
    installed: Path, tmp_path: Path, own_lab_slot: None,
) -> None:
    archive = dist_tree(tmp_path / "dist", "9.1.0")
    data = bytearray(archive.read_bytes())
    data[-100] ^= 0x01
    archive.write_bytes(bytes(data))
    rehearse = [str(installed / "omwizard"), "rehearse", "--nodes", "2", "--headless"]
    with holding_lab_slot():
        with serving(tmp_path / "dist") as base:
            proc = _run(rehearse, cwd=tmp_path,
                        env=_env(tmp_path, OMW_OM_MIRROR=base, OMW_LAB_WAIT="0"))
        assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "SHA-512" in proc.stdout and "Nothing was changed" in proc.stdout
        assert "already runs" not in proc.stdout  # refused before it tried to build
        assert not (tmp_path / "cache" / "omwizard" / "openmeetings").exists()
        assert not (tmp_path / "cache" / "omwizard" / "downloads").exists()
        offline = _run(rehearse, cwd=tmp_path,
                       env=_env(tmp_path, OMW_OM_MIRROR=base, OMW_LAB_WAIT="0"))
    assert offline.returncode == 2
    line = offline.stdout.strip()
    assert "\n" not in line and "--om-files" in line and "--om-mirror" in line
    assert "already runs" not in line
