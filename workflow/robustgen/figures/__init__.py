"""Figures, one module per stage; each function takes tables and returns a matplotlib Figure."""
