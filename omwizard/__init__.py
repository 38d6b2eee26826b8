"""omwizard: turn Apache OpenMeetings servers into a working cluster, and keep it working."""

__version__ = "0.1.0"
