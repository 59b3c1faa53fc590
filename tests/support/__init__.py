"""Test support: in-memory merge sources and other shared helpers."""
