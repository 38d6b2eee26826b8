"""`python -m omwizard` runs the same entry point as the console script."""

from omwizard.cli.main import main

raise SystemExit(main())
