"""Mutations, one module each, and the one JSON Patch helper they all build patches with."""
