"""The index on disk: builder (diff and publish), catalog (SQLite), generations, manifest, and the
swappable stores (dense/, lexical/).
"""
