"""The households resource."""
