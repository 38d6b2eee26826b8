"""benchmarks/run.py --quick runs on the lab and prints every figure (speed is not judged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "check_vs_openssh_3",
    "check_vs_openssh_8",
    "check_8_vs_2",
    "channels_per_node_check",
    "channels_per_node_apply",
    "steps_check",
    "connections_per_node",
    "tui_first_screen_s",
    "tui_peak_rss_mb",
    "cli_check_s",
)


@pytest.mark.lab
@pytest.mark.lab_build
def test_quick_benchmark_prints_every_figure(own_lab_slot: None) -> None:
    """The quick run builds its own labs (2 and 3 nodes), so the session lab is set aside."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for name in FIGURES:
        assert any(line.startswith(f"{name}:") for line in lines), (name, proc.stdout)
    figures = {
        line.split(":", 1)[0]: line.split(":", 1)[1].split()[0]
        for line in lines if not line.startswith("#") and ":" in line
    }
    assert figures["check_vs_openssh_8"] == "n/a"  # "n/a (quick)"
    for name in ("check_vs_openssh_3", "tui_first_screen_s", "tui_peak_rss_mb"):
        float(figures[name])  # a number, whatever its value
