"""One configured model, in composed parts: admission (turns), streams, lifecycle, supervision."""
