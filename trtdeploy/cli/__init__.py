"""The trtdeploy command line (typer). Thin: one module per command over the Python API."""
