"""Pytest fixtures for the local npm registry (Verdaccio)."""
