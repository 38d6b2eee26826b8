"""What an OpenMeetings install looks like: paths, units, drop-ins, versions. Pure."""
