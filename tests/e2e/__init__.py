"""End-to-end tests: the map and the workers' app in headless Chromium against a live server."""
