"""Lexical stores behind one contract (base.LexicalStore)."""
