"""pytest plugin: placeholder (being written)."""
