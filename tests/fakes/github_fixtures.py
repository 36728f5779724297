"""Pytest fixtures for the fake GitHub REST API."""
