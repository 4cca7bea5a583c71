"""Jinja templates for the playground."""
