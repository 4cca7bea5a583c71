"""A configured model's handle and its parts: admission, streams, lifecycle, supervision."""
