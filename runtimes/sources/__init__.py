"""Where a model's files come from: local paths, pypi:, hf: (refs, files, downloads, cache)."""
