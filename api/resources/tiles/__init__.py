"""Vector tiles for the grid-leader map, and the map's household visit history."""
