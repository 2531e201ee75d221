"""Loading: extract → stage (COPY) → merge (set-based SQL), one transaction per run."""

from musicstream.load.pipeline import LoadOptions, run_load
from musicstream.load.stats import LoadResult

__all__ = ["LoadOptions", "LoadResult", "run_load"]
