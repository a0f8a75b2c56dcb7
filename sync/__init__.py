"""Sync between the device buffer and the central store (built in the sync issue)."""
