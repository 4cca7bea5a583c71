"""Runner processes: each local model in a child process the server starts, owns and stops."""
