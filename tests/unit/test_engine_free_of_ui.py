"""The engine and the CLI's headless path never import Textual (two faces, one engine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENGINE_MODULES = [
    "omwizard.plan.model",
    "omwizard.engine.state",
    "omwizard.remote.ssh",
    "omwizard.engine.step",
    "omwizard.engine.runner",
    "omwizard.engine.events",
    "omwizard.om.layout",
    "omwizard.configs.hazelcast",
    "omwizard.configs.persistence",
    "omwizard.configs.javaopts",
    "omwizard.configs.fstab",
    "omwizard.configs.exports",
    "omwizard.sections.preflight",
    "omwizard.sections.network",
    "omwizard.sections.database",
    "omwizard.sections.storage",
    "omwizard.sections.nodes",
    "omwizard.sections.verify",
    "omwizard.engine.export",
    "omwizard.cli.main",
]


def fresh_python(code: str) -> str:
    """Run code in a new interpreter (nothing imported yet); its stdout, after it succeeded."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_engine_modules_do_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(bad))\n"
        "assert not bad, bad[:5]\n"
    )
    assert fresh_python(code).strip() == "0"


def test_every_section_module_lists_steps_in_order() -> None:
    from omwizard.engine.catalog import SECTIONS, steps_for

    for section in SECTIONS:
        steps = steps_for(section)
        assert steps, section
        for step in steps:
            assert step.section == section
            assert step.doc, f"{step.id} has no documentation words"
        names = [s.name for s in steps]
        assert len(names) == len(set(names)), section


def test_verify_reruns_point_at_real_steps() -> None:
    """verify re-runs these checks; a rename elsewhere must break this test, not skip silently."""
    from omwizard.engine.catalog import find_step

    for step_id in ("storage.shared", "database.db-login", "preflight.ports"):
        assert find_step(step_id).id == step_id


def test_tui_first_screen_loads_without_asyncssh(tmp_path: Path) -> None:
    """asyncssh costs ~0.1 s of the TUI's start; only the SSH pool may import it (#11)."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from omwizard.tui.app import make_app\n"
        "async def main():\n"
        f"    app = make_app(state_base=Path({str(tmp_path)!r}), env={{}})\n"
        "    async with app.run_test(headless=True) as pilot:\n"
        "        await pilot.pause()\n"
        "        print(type(app.screen).__name__, 'asyncssh' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    assert fresh_python(code).split() == ["WelcomeScreen", "False"]
