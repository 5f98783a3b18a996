"""Test-only helpers: a fault-injecting indexer driver and shared test articles."""
