"""The runner boundary: a model's own process, its frames, and crashes told in words."""
