"""`python -m botkit.cli`: the `botkit` command."""

import sys

from botkit.cli.main import main

sys.exit(main())
