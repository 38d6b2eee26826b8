"""The sections in the documentation's order, and their steps (each section module's STEPS).

The engine finds the steps by name: a section module is imported when first asked for, so the
engine depends on the step protocol only, and the sections (above it) on the engine.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omwizard.engine.step import Step

SECTIONS: tuple[str, ...] = ("preflight", "network", "database", "storage", "nodes", "verify")

TITLES = {
    "preflight": "Before you start",
    "network": "Multicast",
    "database": "Database",
    "storage": "File systems",
    "nodes": "OM nodes (hazelcast.xml)",
    "verify": "Ensure everything works as expected",
}

SECTION_PACKAGE = "omwizard.sections"

# beside the page's sections: read-only step catalogues run by their own command (`doctor`)
EXTRA = {"doctor": "Troubleshoot (doctor)"}


@cache
def steps_for(section: str) -> tuple[Step, ...]:
    """The section's steps in order (each module lists them in STEPS)."""
    if section not in SECTIONS and section not in EXTRA:
        raise ValueError(f"unknown section {section!r}; choose one of {', '.join(SECTIONS)}")
    module = importlib.import_module(f"{SECTION_PACKAGE}.{section}")
    return tuple(module.STEPS)


def find_step(step_id: str) -> Step:
    section, _, name = step_id.partition(".")
    for step in steps_for(section):
        if step.name == name:
            return step
    raise KeyError(step_id)
