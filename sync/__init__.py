"""Sync between the device buffer and central: the wire protocol, the uploader, the schedule."""
