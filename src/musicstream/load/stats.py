"""What a run did, counted so that every record is accounted for (rule 10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LoadResult:
    """The outcome of one run. ``read == loaded + skipped + duplicates + rejected`` always holds."""

    run_id: int = 0
    status: str = "running"
    files_found: int = 0
    files_read: int = 0
    files_skipped: int = 0
    song_records: int = 0
    event_records: int = 0
    records_read: int = 0
    records_loaded: int = 0
    records_skipped: int = 0
    logged_out: int = 0
    native_lines: int = 0  # event lines the local engine parsed natively (others: the Python path; Spark: uncounted)
    duplicates: int = 0
    rejected: int = 0
    names_repaired: int = 0  # rule 6: names read damaged and repaired (each record's), and their distinct spellings
    spellings_repaired: int = 0
    rows_added: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    peak_rss_mb: float = 0.0  # the largest resident memory of the loader or any of its worker processes
    timings: dict[str, float] = field(default_factory=dict)
    top_rejects: list[dict[str, Any]] = field(default_factory=list)  # reason, records, example (file:line)
    seconds: float = 0.0
    error: str | None = None

    def add_file(self, kind: str, size: int, records: int, rejects: int) -> None:
        """Count a file the run read (both engines count here): its bytes, its records, and those rejected."""
        self.files_read += 1
        self.bytes_read += size
        self.records_read += records
        self.rejected += rejects
        if kind == "song":
            self.song_records += records
        else:
            self.event_records += records

    @property
    def reconciles(self) -> bool:
        return self.records_read == self.records_loaded + self.records_skipped + self.duplicates + self.rejected

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reconciles"] = self.reconciles
        return data
