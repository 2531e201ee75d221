"""The rules of docs/rules.md that are computed record by record (the set-based ones live in sql/load)."""
