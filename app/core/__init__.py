"""Serving configured models, with no web framework: registry, handles, admission, runners."""
