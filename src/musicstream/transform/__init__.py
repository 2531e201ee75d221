"""The rules of SEMANTICS.md that are computed record by record (the set-based ones live in sql/load)."""
