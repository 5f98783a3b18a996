"""Hybrid retrieval over one published generation, and the filters by article and date."""
