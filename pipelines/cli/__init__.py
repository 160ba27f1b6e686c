"""The `geofm` command line: `main` parses the command and runs one module of `commands`."""
