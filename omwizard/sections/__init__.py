"""One module per section of OpenMeetings' clustering page, in the page's order.

The catalog (SECTIONS, TITLES, steps_for, find_step) is omwizard.engine.catalog: the engine and
the faces find a section's steps there by name, so nothing imports this package for them.
"""
