"""The HTTP edge: what every request must pass before a route does any work."""
