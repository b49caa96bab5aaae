"""`python -m mailharness` is the `mailharness` command."""

from mailharness.cli import main

raise SystemExit(main())
