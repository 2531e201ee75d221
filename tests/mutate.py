"""Mutation check: plant small bugs in the rules, one at a time, and see whether the tests catch each.

    make mutate                        # every mutation (about 15 minutes on a 2-core machine)
    python tests/mutate.py --list      # the mutations
    python tests/mutate.py --only rule2_latest_event_wins --only rule6_tolerance_2s

Each mutation replaces one exact piece of text in one file of a copy of the project (src/, tests/, data/,
notebooks/ in a temporary folder; the checkout is never touched), then runs the tests it names with the copy's
src/ first on the path. A mutant is *killed* when those tests fail, *survives* when they pass. The run prints
every result, the score and the survivors, and exits 1 when one survives or when a mutation's text is no longer
found exactly once (the list must follow the code).

Adding a mutation: append a Mutation(name, file, find, replace, tests) to MUTATIONS below: `find` must occur
exactly once in `file`, `replace` is the bug (a flipped comparison or ORDER BY, a moved tolerance, a dropped
DISTINCT or WHERE clause...), `tests` the pytest files or node ids that should catch it. Run
`python tests/mutate.py --only NAME` to see it killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MERGE = "src/musicstream/sql/load/merge.sql"
REPORT = "src/musicstream/sql/report/report.sql"
QUERIES = "src/musicstream/sql/queries"
RECORDS = "src/musicstream/transform/records.py"
NATIVE = "src/musicstream/engines/native.py"
STAR = "src/musicstream/sql/spark/star.sql"
NATIVE_TESTS = ("tests/test_native.py", "tests/test_rules.py")
SPARK_REFERENCE = ("tests/test_spark.py::test_both_engines_equal_the_reference",)
REFERENCE = "tests/test_reference.py"
ROLLUPS = "src/musicstream/sql/rollups/maintain.sql"
FUNCTIONS = "src/musicstream/sql/rollups/functions"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...] = (REFERENCE,)
    occurrences: int = 1  # how many times ``find`` is in ``file`` (each is replaced): a first load's variant too


MUTATIONS = [
    # --- rule 1: plays
    Mutation("rule1_keep_all_quotes", RECORDS, "agent[0] == '\"' and agent[-1] == '\"'", "False"),
    Mutation(
        "rule1_ms_truncated", "src/musicstream/transform/normalize.py", "round(seconds * 1000)", "int(seconds * 1000)"
    ),
    # --- rule 2: duplicates
    Mutation(
        "rule2_latest_event_wins",
        MERGE,
        "ORDER BY p.user_id, p.session_id, p.item_in_session, p.ts,",
        "ORDER BY p.user_id, p.session_id, p.item_in_session, p.ts DESC,",
    ),
    Mutation(
        "rule2_no_dedupe_against_stored",
        MERGE,
        "      AND t.user_id = p.user_id AND t.session_id = p.session_id AND t.item_in_session = p.item_in_session",
        "      AND false",
    ),
    # --- rule 3: users
    Mutation(
        "rule3_earliest_event",
        "src/musicstream/transform/records.py",
        "event[:3] > current[:3]",
        "event[:3] < current[:3]",
    ),
    Mutation("rule3_ts_only", RECORDS, "event[:3] > current[:3]", "event[:1] > current[:1]"),
    Mutation(
        "rule3_upsert_rolls_back",
        MERGE,
        "    WHERE (excluded.last_event_ts, excluded.last_session_id, excluded.last_item)\n        > (u.last_event_ts",
        "    WHERE (excluded.last_event_ts, excluded.last_session_id, excluded.last_item)\n        <> (u.last_event_ts",
    ),
    Mutation("rule3_no_unknown", RECORDS, "first or UNKNOWN_NAME", "first or 'unknown'"),
    # --- rule 4: time
    Mutation(
        "rule4_week_of_year", MERGE, "date_part('week', start_time)", "date_part('doy', start_time) / 7", occurrences=2
    ),
    Mutation("rule4_weekday_shifted", MERGE, "'Sunday', 'Monday'", "'Monday', 'Sunday'", occurrences=2),
    Mutation(
        "rollup_first_item_is_last",
        ROLLUPS,
        "min(k.key) AS first_key",
        "max(k.key) AS first_key",
        (REFERENCE, "tests/test_rollups.py"),
    ),
    Mutation(
        "rollup_item_sign_lost",
        ROLLUPS,
        "+ p.item_in_session + 2147483648 AS key",
        "+ abs(p.item_in_session) AS key",
        (REFERENCE, "tests/test_rollups.py"),
    ),
    # --- rule 5: catalog
    Mutation(
        "rule5_artist_largest_song",
        MERGE,
        "    ORDER BY artist_id, track_id, artist_name",
        "    ORDER BY artist_id, track_id DESC, artist_name",
        (REFERENCE, "tests/test_rule5.py"),
    ),
    Mutation("rule5_year_zero_kept", RECORDS, "year or None,", "year,"),
    # --- rule 6: matching
    Mutation(
        "rule6_tolerance_2s", MERGE, "k.length_ms / 1000.0) <= {{match_tolerance_s}}", "k.length_ms / 1000.0) <= 2.0"
    ),
    Mutation(
        "rule6_tolerance_strict",
        MERGE,
        "k.length_ms / 1000.0) <= {{match_tolerance_s}}",
        "k.length_ms / 1000.0) < {{match_tolerance_s}}",
    ),
    Mutation(
        "rule6_farthest_first",
        MERGE,
        "ORDER BY k.k_id, abs(t.duration::numeric - k.length_ms / 1000.0), t.track_id",
        "ORDER BY k.k_id, abs(t.duration::numeric - k.length_ms / 1000.0) DESC, t.track_id",
    ),
    Mutation(
        "rule6_tie_largest_id",
        MERGE,
        "ORDER BY k.k_id, abs(t.duration::numeric - k.length_ms / 1000.0), t.track_id",
        "ORDER BY k.k_id, abs(t.duration::numeric - k.length_ms / 1000.0), t.track_id DESC",
    ),
    Mutation(
        "rule6_title_ignored",
        MERGE,
        "ON NOT t.is_inferred AND t.artist_key = k.artist_key AND t.title_key = k.title_key",
        "ON NOT t.is_inferred AND t.artist_key = k.artist_key",
    ),
    Mutation("rule6_no_casefold", "src/musicstream/transform/normalize.py", ".casefold()", ""),
    Mutation("rule6_nfc", "src/musicstream/transform/normalize.py", '"NFKC"', '"NFC"'),
    # --- rule 7: inferred members
    Mutation(
        "rule7_artist_largest_id",
        MERGE,
        "    SELECT artist_key, min(artist_id) AS artist_id\n    FROM tracks",
        "    SELECT artist_key, max(artist_id) AS artist_id\n    FROM tracks",
    ),
    Mutation(
        "rule7_inferred_id_without_length",
        MERGE,
        "|| chr({{key_separator_code}}) || length_ms::text)",
        ")",
    ),
    Mutation(
        "rule7_later_spelling_of_known_title_ignored",
        MERGE,
        "SELECT n.track_id, n.song_title\n",
        "SELECT n.track_id, NULL\n",
    ),
    Mutation(
        "rule7_later_spelling_of_known_artist_ignored",
        MERGE,
        "SELECT n.artist_id, n.artist_name\n",
        "SELECT n.artist_id, NULL\n",
    ),
    # --- rule 8: late catalog
    Mutation(
        "rule8_plays_not_moved",
        MERGE,
        "  AND (r.old_track_id, r.old_artist_id) IS DISTINCT FROM (r.track_id, r.artist_id)\n  AND p.trackplay_id",
        "  AND false\n  AND p.trackplay_id",
    ),
    Mutation(
        "rule8_orphans_kept",
        MERGE,
        "DELETE FROM tracks t\nWHERE t.is_inferred",
        "DELETE FROM tracks t\nWHERE false AND t.is_inferred",
    ),
    # --- report figures
    Mutation(
        "report_track_listeners_are_plays",
        f"{FUNCTIONS}/day_tops.sql",
        "SELECT count(DISTINCT u) INTO n_listeners",
        "SELECT count(u) INTO n_listeners",
        (REFERENCE, "tests/test_rollups.py::test_top_lists_are_exact_with_short_day_lists"),
    ),
    Mutation(
        "report_day_top_listeners_are_plays",
        f"{FUNCTIONS}/day_tops.sql",
        "k.plays, cardinality(l.users), ARRAY(",
        "k.plays, k.plays, ARRAY(",
        ("tests/test_rollups.py::test_top_lists_are_exact_with_short_day_lists",),
    ),
    Mutation(
        "report_top_bound_without_unseen",
        f"{FUNCTIONS}/day_tops.sql",
        "SELECT t.key AS k, unseen + sum(",
        "SELECT t.key AS k, sum(",
        ("tests/test_rollups.py::test_top_lists_are_exact_with_short_day_lists",),
    ),
    Mutation(
        "report_top_listeners_ranked_by_plays",
        REPORT,
        "SELECT 'listeners', * FROM report_top('track', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, "
        "'listeners')",
        "SELECT 'listeners', * FROM report_top('track', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, "
        "'plays')",
    ),
    Mutation(
        "report_headline_listeners",
        REPORT,
        "       coalesce(bit_count(bits_union(users)), 0) AS listeners,\n       coalesce(sum(length_ms), 0)",
        "       coalesce(sum(listeners), 0) AS listeners,\n       coalesce(sum(length_ms), 0)",
    ),
    Mutation(
        "report_daily_distinct",
        REPORT,
        "SELECT day, bit_count(bits_union(users)) AS listeners, sum(plays) AS plays",
        "SELECT day, sum(listeners) AS listeners, sum(plays) AS plays",
    ),
    Mutation("report_mau_window", REPORT, "WHERE s.day >= last.day - 29;", "WHERE s.day >= last.day - 30;"),
    Mutation(
        "report_tiers_distinct",
        REPORT,
        "SELECT tier, sum(plays) AS plays, bit_count(bits_union(users)) AS listeners",
        "SELECT tier, sum(plays) AS plays, sum(listeners) AS listeners",
    ),
    Mutation(
        "report_upgrade_direction",
        REPORT,
        "coalesce(bit_count(bits_union((paid & free_before) | paid_arrivals)), 0) AS upgraded",
        "coalesce(bit_count(bits_union((free & paid_before) | paid_arrivals)), 0) AS upgraded",
    ),
    Mutation(
        "report_upgrades_within_a_day_missed",
        REPORT,
        "bits_union((paid & free_before) | paid_arrivals)",
        "bits_union(paid & free_before)",
        (REFERENCE, "tests/test_rollups.py::test_report_equals_the_report_from_the_plays_on_synthetic_plays"),
    ),
    Mutation(
        "tier_arrivals_reversed",
        f"{FUNCTIONS}/tier_moves.sql",
        "coalesce(o.first_at < d.last_at, false) AS arrived",
        "coalesce(o.last_at < d.first_at, false) AS arrived",
        (REFERENCE, "tests/test_rollups.py::test_report_equals_the_report_from_the_plays_on_synthetic_plays"),
    ),
    Mutation(
        "report_since_dropped",
        f"{FUNCTIONS}/day_sets.sql",
        "WHERE dim = p_dim\n      AND day >= coalesce(p_since, '-infinity'::date)",
        "WHERE dim = p_dim\n      AND day >= coalesce(NULL, '-infinity'::date)",
    ),
    Mutation(
        "report_until_exclusive",
        "src/musicstream/sql/functions/report_plays.sql",
        "start_time < coalesce(p_until + 1, 'infinity'::date)",
        "start_time < coalesce(p_until, 'infinity'::date)",
    ),
    Mutation(
        "report_locations_listeners",
        REPORT,
        "AS location, sum(plays) AS plays, bit_count(bits_union(users)) AS listeners",
        "AS location, sum(plays) AS plays, sum(listeners) AS listeners",
    ),
    Mutation(
        "report_catalog_match",
        ROLLUPS,
        "count(*) FILTER (WHERE NOT t.is_inferred) AS catalog_plays,\n       min(p.start_time) AS first_play",
        "count(*) FILTER (WHERE t.is_inferred) AS catalog_plays,\n       min(p.start_time) AS first_play",
    ),
    # --- curated queries
    Mutation(
        "query_top_tracks_by_listeners",
        f"{QUERIES}/top_tracks.sql",
        "%(limit)s::int, 'plays') c",
        "%(limit)s::int, 'listeners') c",
    ),
    Mutation(
        "query_artist_tracks_distinct",
        f"{QUERIES}/artist_listeners.sql",
        "count(DISTINCT p.track_id) AS tracks",
        "count(p.track_id) AS tracks",
    ),
    Mutation(
        "query_artist_case_sensitive",
        f"{QUERIES}/artist_listeners.sql",
        "WHERE lower(a.name) = lower(%(artist)s::text)",
        "WHERE a.name = %(artist)s::text",
    ),
    Mutation(
        "query_hourly_percent",
        f"{QUERIES}/hourly_pattern.sql",
        "round(100.0 * coalesce(p.plays, 0)",
        "round(10.0 * coalesce(p.plays, 0)",
    ),
    Mutation(
        "query_hourly_listeners_other_hours",
        f"{QUERIES}/hourly_pattern.sql",
        "sum((hours >> 5) & 1),",
        "sum((hours >> 6) & 1),",
    ),
    Mutation(
        "query_session_bucket_edge",
        f"{FUNCTIONS}/session_lengths.sql",
        "WHEN songs <= 5 THEN 2",
        "WHEN songs < 5 THEN 2",
    ),
    Mutation(
        "query_median_is_mean",
        f"{QUERIES}/session_lengths.sql",
        "(min(seconds) FILTER (WHERE up_to > div(n - 1, 2)) + min(seconds) FILTER (WHERE up_to > div(n, 2)))",
        "2 * sum(seconds * sessions) / sum(sessions)",
    ),
    Mutation(
        "query_median_lower_middle",
        f"{QUERIES}/session_lengths.sql",
        "min(seconds) FILTER (WHERE up_to > div(n, 2))",
        "min(seconds) FILTER (WHERE up_to > div(n - 1, 2))",
    ),
    Mutation(
        "session_lengths_spanning_missed",
        f"{FUNCTIONS}/session_lengths.sql",
        "WHERE s.first_day < s.last_day;",
        "WHERE s.first_day < s.last_day AND false;",
        (REFERENCE, "tests/test_rollups.py::test_curated_queries_equal_the_queries_on_the_plays"),
    ),
    Mutation(
        "query_day_opened_by_the_later_tier",
        f"{FUNCTIONS}/tier_moves.sql",
        "o.first_at IS NULL OR d.first_at < o.first_at AS opened",
        "o.first_at IS NULL OR d.first_at > o.first_at AS opened",
        (REFERENCE, "tests/test_rollups.py::test_curated_queries_equal_the_queries_on_the_plays"),
    ),
    Mutation(
        "query_started_free_both_tiers",
        f"{QUERIES}/free_to_paid.sql",
        "bits_union(new & free_openers) AS free",
        "bits_union(new & free) AS free",
    ),
    # --- the native reader (engines/native.py): rules 1, 3 and 6 in polars, held to the Python path
    Mutation(
        "native_length_bound_inclusive", NATIVE, "& (length < MAX_LENGTH_S)", "& (length <= MAX_LENGTH_S)", NATIVE_TESTS
    ),
    Mutation("native_any_tier", NATIVE, '& pl.col("level").is_in(list(TIERS))', "", NATIVE_TESTS),
    Mutation("native_negative_length", NATIVE, "& (length >= 0)", "", NATIVE_TESTS),
    Mutation(
        "native_names_not_lowercased",
        NATIVE,
        "fast = names.str.to_lowercase()",
        "fast = names",
        NATIVE_TESTS,
    ),
    Mutation("native_space_kept", NATIVE, '.str.strip_chars(" ")', "", NATIVE_TESTS),
    # --- the Spark SQL (sql/spark/star.sql): the rules' second implementation, held to the reference
    Mutation(
        "spark_tolerance_strict",
        STAR,
        "<= {{match_tolerance_ms}}",
        "< {{match_tolerance_ms}}",
        SPARK_REFERENCE,
    ),
    Mutation(
        "spark_farthest_first",
        STAR,
        "ORDER BY abs(t.duration_num * 1000 - n.length_ms), t.track_id) AS pick",
        "ORDER BY abs(t.duration_num * 1000 - n.length_ms) DESC, t.track_id) AS pick",
        SPARK_REFERENCE,
    ),
    Mutation(
        "spark_artist_largest_id",
        STAR,
        "SELECT artist_key, min(artist_id) AS named_artist_id",
        "SELECT artist_key, max(artist_id) AS named_artist_id",
        SPARK_REFERENCE,
    ),
    Mutation(
        "spark_inferred_id_without_length",
        STAR,
        "\n                    char({{key_separator_code}}), CAST(length_ms AS STRING))",
        ")",
        SPARK_REFERENCE,
    ),
]


def _copy_project(into: Path) -> None:
    for folder in ("src", "tests", "data", "notebooks"):
        shutil.copytree(ROOT / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    for name in ("pyproject.toml",):
        shutil.copy2(ROOT / name, into / name)


def _pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = -1
    return code, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these mutations")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one mutant's tests may take")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:40s} {m.file}  →  {', '.join(m.tests)}")
        return 0
    unknown = set(args.only) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"unknown mutation(s): {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
        return 2
    stale = [m.name for m in chosen if (ROOT / m.file).read_text(encoding="utf-8").count(m.find) != m.occurrences]
    if stale:
        print(
            f"these mutations' text is not found as often as they say; update them: {', '.join(stale)}", file=sys.stderr
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="ms-mutate-") as tmp:
        copy = Path(tmp)
        _copy_project(copy)
        suites = sorted({t for m in chosen for t in m.tests})
        code, seconds = _pytest(copy, tuple(suites), args.timeout)
        print(f"baseline: {' '.join(suites)}: {'pass' if code == 0 else 'FAIL'} in {seconds:.0f} s", flush=True)
        if code != 0:
            print("the tests fail without any mutation: fix them first", file=sys.stderr)
            return 1
        survivors, errors, started = [], [], time.monotonic()
        for n, m in enumerate(chosen, 1):
            target = copy / m.file
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(m.find, m.replace), encoding="utf-8")
            try:
                code, seconds = _pytest(copy, m.tests, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            verdict = {0: "SURVIVED", 1: "killed"}.get(code, f"error ({'timeout' if code == -1 else code})")
            if code == 0:
                survivors.append(m.name)
            elif code != 1:
                errors.append(m.name)
            print(f"[{n:2d}/{len(chosen)}] {m.name:40s} {verdict:10s} {seconds:5.0f} s", flush=True)
    killed = len(chosen) - len(survivors) - len(errors)
    print(
        f"\nscore: {killed}/{len(chosen)} killed ({100 * killed / len(chosen):.0f} %) in "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )
    if survivors:
        print("survivors: " + ", ".join(survivors))
    if errors:
        print("errors (the tests could not run, which is not a kill): " + ", ".join(errors))
    return 1 if survivors or errors else 0


if __name__ == "__main__":
    sys.exit(main())
