"""Domain services: plain functions taking a SQLAlchemy session; they flush, views commit."""
