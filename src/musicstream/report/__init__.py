"""Reports on the loaded data: what people listen to, when, on which tier (``musicstream report``)."""

from musicstream.report.build import ReportFilters, build_report, empty_period

__all__ = ["ReportFilters", "build_report", "empty_period"]
