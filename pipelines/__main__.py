"""`python -m pipelines` is the `geofm` command."""

import sys

from pipelines.cli import main

sys.exit(main())
