"""Plumbing shared by the library: atomic file writes, lazy exports, the allocator setting of ``tagvis evaluate``."""
