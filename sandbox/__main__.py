"""`python -m sandbox`: the same command line as the `sandbox` console script."""

from sandbox.cli import main

raise SystemExit(main())
