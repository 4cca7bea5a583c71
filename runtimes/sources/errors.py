"""The error every source raises: a source that cannot be resolved to files on this machine."""

from __future__ import annotations


class SourceError(Exception):
    """A source that cannot be resolved to files on this machine; the message says why."""
