"""localoip: the server, its CLI, configuration, registry and protocol adapters."""
