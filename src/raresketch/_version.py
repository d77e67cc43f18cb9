"""The package version (a leaf: imported by the package and its writers, imports nothing)."""
__version__ = "0.1.0"
