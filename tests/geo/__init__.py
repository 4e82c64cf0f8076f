"""Tests for the pure spatial package geo."""
