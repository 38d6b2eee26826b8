"""benchmarks/run.py --quick runs on the lab and prints every figure, the round trips through
the delaying relay included (speed is not judged)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def benchmark_figures() -> tuple[str, ...]:
    """The figure names run.py promises (read from it, so a new figure is checked here too)."""
    path = ROOT / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("omw_benchmarks_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return tuple(module.FIGURES)


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
    names = benchmark_figures()
    assert len(names) >= 10 and "check_vs_openssh_8" in names
    for name in names:
        assert any(line.startswith(f"{name}:") for line in lines), (name, proc.stdout)
    figures = {
        line.split(":", 1)[0]: line.split(":", 1)[1].split()[0]
        for line in lines if not line.startswith("#") and ":" in line
    }
    assert figures["check_vs_openssh_8"] == "n/a"  # "n/a (quick)"
    assert figures["check_network_vs_openssh_6"] == "n/a"  # the 6-node lab: full run only
    for name in ("check_vs_openssh_3", "tui_first_screen_s", "tui_peak_rss_mb",
                 "check_round_trips", "check_round_trips_fresh", "apply_round_trips",
                 "apply_round_trips_working", "check_fresh_vs_formed_3"):
        float(figures[name])  # a number, whatever its value
    print(proc.stdout)  # the figures in the CI log (pytest -s, or on failure)
