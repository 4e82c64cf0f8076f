"""Tests of the domain services."""
