"""The audit resource."""
