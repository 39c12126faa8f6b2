"""Graphite: path patterns, target expressions and the render function library."""
