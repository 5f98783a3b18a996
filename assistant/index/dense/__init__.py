"""Dense stores behind one contract (base.DenseStore)."""
