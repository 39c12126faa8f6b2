"""Data-driven PromQL scripts (``*.test``), their format and the reference checker."""
