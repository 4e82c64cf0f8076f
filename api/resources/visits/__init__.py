"""The visits resource."""
