"""The tasks resource."""
