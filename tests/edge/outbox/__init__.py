"""Tests of the outbox backends."""
