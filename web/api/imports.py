"""Imports API (filled by the pipeline)."""
