"""``python -m graphsentry``: the same command line as ``graphsentry``."""

from graphsentry.cli import main

raise SystemExit(main())
