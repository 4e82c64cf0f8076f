"""Weekly coverage reports."""
