"""Fake external services (FCM, Web Push) served on loopback for tests."""
