"""The devices resource."""
