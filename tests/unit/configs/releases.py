"""The real OpenMeetings files of each release the config tests read in place (../shared)."""

from __future__ import annotations

from omwizard.lab import shared_dir

OM = shared_dir() / "fixtures" / "openmeetings"
VERSIONS = ["4.0.11", "5.0.0", "6.3.0", "7.0.0", "8.1.0", "9.1.0"]
