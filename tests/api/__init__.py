"""Tests of the Flask API and its services."""
