"""Tests of the push delivery package."""
