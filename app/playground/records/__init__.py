"""The playground's own records: conversations, arenas and image results."""
