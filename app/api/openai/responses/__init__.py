"""The Responses API: its routes, its input read into chats, its output built from deltas, runs
in tasks, and compaction."""
