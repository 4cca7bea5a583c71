"""Checks at the edge of the HTTP app: hosts, origins, media types, compression, sessions."""
