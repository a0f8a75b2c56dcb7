"""Balie central: receives the terminals' responses and keeps the analysis database."""
