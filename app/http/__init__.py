"""The HTTP edge: how domain errors and events become responses."""
