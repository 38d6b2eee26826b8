"""The headless face: the command line and its JSON, and the rehearsal command."""
