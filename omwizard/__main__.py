"""`python -m omwizard` runs the same entry point as the console script."""

from omwizard.cli import main

raise SystemExit(main())
