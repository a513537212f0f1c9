"""Test-only helpers that run in processes the tests start (never imported by production code)."""
