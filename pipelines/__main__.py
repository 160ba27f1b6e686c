"""`python -m pipelines` is the `geofm` command."""

import sys

from pipelines.cli.main import main

sys.exit(main())
