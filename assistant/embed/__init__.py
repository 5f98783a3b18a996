"""Texts to vectors: the Embedder protocol (base), its backends, the offline export and the e5
conversion.
"""
