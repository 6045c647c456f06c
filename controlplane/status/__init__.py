"""The status page and JSON API: reads a view of the running system, never mutates it."""
