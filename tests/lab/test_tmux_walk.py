"""Issue #17: the whole wizard as an operator walks it. `scripts/wizard rehearse` (the real
command, as root) runs in tmux at 120x40; the test drives it only with keys the screen shows
(its footer or the dialog's key line), waits for each state by polling capture-pane, walks
every section to a green verify, quits, and `--down` leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from omwizard.cli.rehearse import REHEARSAL_DIR, SESSION_FILE
from omwizard.engine.catalog import SECTIONS
from omwizard.engine.state import StateStore
from omwizard.lab import netns as lab_netns
from tests.needs import need_tool

pytestmark = pytest.mark.lab_build

ROOT = Path(__file__).resolve().parents[2]
# 120x40 here; OMW_WALK_SIZE=80x24 walks the smallest terminal the wizard is made for
WIDTH, HEIGHT = (int(n) for n in os.environ.get("OMW_WALK_SIZE", "120x40").split("x"))
LAB_WAIT = os.environ.get("OMW_LAB_WAIT", "900")  # another test session may hold the lab slot


class Terminal:
    """One tmux server of our own (its own socket): a 120x40 terminal running a command."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"omw-walk-{uuid.uuid4().hex[:8]}"
        self.status = tmp / "status"
        self.screens: list[str] = []  # every screen seen (the failure message shows the last)

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30)

    def start(self, command: str, env: dict[str, str]) -> None:
        shell = f"cd {ROOT} && {command}; echo $? > {self.status}; sleep 600"
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "walk",
                        "-x", str(WIDTH), "-y", str(HEIGHT), "sh", "-c", shell],
                       check=True, env=env, timeout=30)

    def screen(self) -> str:
        text = self.tmux("capture-pane", "-p", "-t", "walk").stdout
        if not self.screens or self.screens[-1] != text:
            self.screens.append(text)
        return text

    def wait(self, what: str, cond: Callable[[str], bool], timeout: float = 120) -> str:
        """Poll the screen until cond(screen) holds."""
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if cond(text):
                return text
            if time.monotonic() > end or self.status.exists():
                raise AssertionError(f"waiting for {what}; the screen:\n{text}")
            time.sleep(0.2)

    def press(self, key: str, shown: str) -> None:
        """Send a key once the screen shows it (`shown`: its label there)."""
        self.wait(f"the key {shown!r} on the screen", lambda text: shown in text, timeout=15)
        self.tmux("send-keys", "-t", "walk", key)

    def close(self) -> None:
        self.tmux("kill-server")


def footer(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-2:])


def title(n: int) -> Callable[[str], bool]:
    return lambda text: f"{n}/{len(SECTIONS)}  " in text


def idle_after(word: str) -> Callable[[str], bool]:
    """The section's activity line says the work ended ("checked in 3s", "applied 2 steps
    in 5s") and no dialog is open."""
    done = re.compile(rf"\b{word}( \d+ steps?)? in \d+s")
    return lambda text: bool(done.search(text)) and "Enter:" not in text


def grid_rows(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("step "))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith(("▁", "█", "▔")) or "Log" in line:
            break
        rows.append(line)
    return rows


def nothing_left() -> None:
    assert lab_netns.lab_namespaces() == []
    assert lab_netns.lab_links() == []
    assert not REHEARSAL_DIR.exists()
    assert not Path("/var/tmp/omwlab").exists()


def apply_section(term: Terminal, n: int) -> str:
    """A on the section's screen, yes to each diff, until the apply ends; the screen then."""
    term.press("A", "A all")
    end = time.monotonic() + 600
    seen_dialog = False
    while time.monotonic() < end:
        text = term.screen()
        if "Enter:" in text and "y: " in text:  # a confirmation: its key line names y
            term.press("y", "y: ")
            seen_dialog = True
            time.sleep(0.3)
            continue
        if idle_after("applied")(text):
            return text
        if term.status.exists():
            break
        time.sleep(0.2)
    raise AssertionError(f"section {n}: apply did not end (dialog seen: {seen_dialog}):\n"
                         f"{term.screens[-1]}")


def test_walk_rehearse_to_a_green_verify_with_the_keys_shown(own_lab_slot, tmp_path) -> None:
    need_tool("tmux", "tmux")
    term = Terminal(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
    env.update({"TERM": "xterm-256color", "OMW_LAB_WAIT": LAB_WAIT})
    term.start("scripts/wizard rehearse --nodes 2", env)
    state_dir: Path | None = None
    try:
        # the rehearsal's plan opens in the inventory (it may first wait for the lab slot)
        text = term.wait("the inventory", lambda t: "Continue" in footer(t),
                         timeout=float(LAB_WAIT) + 300)
        # the welcome's Practise, inside a rehearsal: says so, names the command as run
        term.press("Escape", "esc Welcome")
        term.wait("the welcome screen", lambda t: "Welcome to omwizard" in t)
        term.press("p", "p Practise")
        text = term.wait("the Practise dialog", lambda t: "Enter:" in t)
        flat = " ".join(text.split())
        assert "already runs on a rehearsal cluster" in flat, text
        assert "scripts/wizard rehearse" in flat and "installed" not in flat, text
        term.press("Escape", "n or Esc: ")
        term.wait("the welcome screen", lambda t: "Enter:" not in t and "Resume" in footer(t))
        term.press("f2", "f2 Theme")  # the light theme (the wizard starts dark)
        term.press("r", "r Resume")  # the rehearsal's session: its first section
        for n, section in enumerate(SECTIONS, 1):
            # a first visit checks the section by itself: no key needed
            text = term.wait(f"section {n} checked", lambda t, n=n: title(n)(t)
                             and idle_after("checked")(t), timeout=300)
            text = apply_section(term, n)
            rows = grid_rows(text)
            assert rows and not any("✗" in row for row in rows), text
            if section == "verify":  # green: nothing failed, nothing left to do or running
                assert not any(sym in row for row in rows for sym in "!~⟳"), text
                break
            term.press("n", "n Next")
        # green in the session too: every verify result ok, changed (the restart) or skipped
        # (not for that node)
        session = json.loads((REHEARSAL_DIR / SESSION_FILE).read_text())
        state_dir = Path(session["state_dir"])
        state = StateStore(state_dir)
        verify = {k: r["status"] for k, r in state.results().items() if k.startswith("verify/")}
        assert verify and set(verify.values()) <= {"ok", "changed", "skipped"}, verify
        assert verify["verify/members/n1"] == verify["verify/health/n2"] == "ok", verify
        term.press("C-q", "^q Quit")
        term.wait("the rehearsal to end", lambda t: term.status.exists(), timeout=180)
        assert term.status.read_text().strip() == "0", term.screen()
    finally:
        if os.environ.get("OMW_WALK_SCREENS"):  # every screen seen, for a person to read
            Path(os.environ["OMW_WALK_SCREENS"]).write_text("\n\f\n".join(term.screens))
        if not term.status.exists():
            term.tmux("send-keys", "-t", "walk", "C-q")
            end = time.monotonic() + 120
            while not term.status.exists() and time.monotonic() < end:
                time.sleep(0.5)
        term.close()
    down = subprocess.run([str(ROOT / "scripts" / "wizard"), "rehearse", "--down"],
                          capture_output=True, text=True, timeout=600, env=env,
                          stdin=subprocess.DEVNULL)
    assert down.returncode == 0, down.stdout + down.stderr
    nothing_left()
    assert state_dir is not None and not state_dir.exists()  # its session went with it
