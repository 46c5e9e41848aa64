"""NumPy reference implementations (no framework imports)."""
