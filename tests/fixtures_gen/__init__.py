"""Tests of the pure-data fixture generators (no database, no Flask)."""
