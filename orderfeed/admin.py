"""admin: filled in by the issue that builds this app (see README)."""
