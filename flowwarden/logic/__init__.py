"""The condition IR: extraction from rule Python, rewrites, and the renderers that consume it."""
