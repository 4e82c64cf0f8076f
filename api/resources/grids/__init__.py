"""The grids resource."""
