"""The playground's own records and their tables (tables.py): conversations, arenas and image
results."""
