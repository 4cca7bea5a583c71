"""The command line: serve, runner, pull/ps/load/unload, doctor and export."""
