"""The protocol adapters: siblings over the core's capabilities, never importing each other."""
