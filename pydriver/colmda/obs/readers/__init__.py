"""Readers of real observation and reference products (one module per product)."""
