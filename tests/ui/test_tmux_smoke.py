"""Smoke: `python -m omwizard` in a real terminal (tmux): the welcome screen, then a clean quit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.needs import need_tool

ROOT = Path(__file__).resolve().parents[2]


def test_welcome_in_tmux_and_quit(tmp_path: Path) -> None:
    need_tool("tmux", "tmux")
    session = f"omw-smoke-{uuid.uuid4().hex[:8]}"
    status = tmp_path / "status"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    cmd = f"cd {ROOT} && {sys.executable} -m omwizard; echo $? > {status}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    "sh", "-c", cmd], check=True, env=env)
    try:
        screen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            if "New cluster plan" in screen:
                break
            time.sleep(0.3)
        assert "Welcome to omwizard" in screen, screen
        assert "New cluster plan" in screen and "Saved sessions" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
