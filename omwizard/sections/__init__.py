"""One module per section of OpenMeetings' clustering page, in the page's order.

The catalog (SECTIONS, TITLES, steps_for, find_step) lives in omwizard.engine.catalog, so the
engine reaches the steps without importing this package; it is re-exported here for the faces.
"""

from __future__ import annotations

from omwizard.engine.catalog import SECTIONS, TITLES, find_step, steps_for

__all__ = ["SECTIONS", "TITLES", "find_step", "steps_for"]
