"""Static assets for the playground."""
