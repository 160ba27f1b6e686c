"""The `geofm` commands, one module each, imported only when their command runs (so a DVC stage's code
dependencies are exactly the modules its command imports). Each module has `run(args, project)`."""
