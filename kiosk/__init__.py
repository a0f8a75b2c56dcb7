"""Balie kiosk: the touch terminal at the counter and its durable local buffer."""

__version__ = "0.1.0"
