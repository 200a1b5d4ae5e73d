"""Preference registers in `suppression/`: loaded like every CSV family (lineage, quarantine, accounting), one
snapshot in force per register in staging, values standardised; its job, schedule and landing sensor."""

import hashlib
import json

import dagster as dg

from customer_pipeline import warehouse as wh
from customer_pipeline.definitions import defs as load_defs
from customer_pipeline.defs.automation import sensors
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.ingest.accounting import account_files
from customer_pipeline.ingest.formats import SUPPRESSION
from customer_pipeline.ingest.suppression import load_suppression_registers
from customer_pipeline.staging.suppression import build_suppression_entries
from customer_pipeline_tests.landing import csv_bytes, write

HEADER = SUPPRESSION.columns


def _register(root, name, rows, header=HEADER):
    return write(root / "suppression" / name, csv_bytes(header, rows))


def _load(tmp_path, landing, run_id="r1"):
    with wh.connect(tmp_path / "w.duckdb") as con:
        stats = load_suppression_registers(con, landing, run_id)
        counts = build_suppression_entries(con)
    return stats, counts


def _rows(tmp_path, sql):
    with wh.connect(tmp_path / "w.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def test_rows_land_with_lineage_and_bad_rows_and_files_are_quarantined_with_their_reason(tmp_path):
    landing = tmp_path / "landing"
    good = _register(landing, "dnc_gb_2026-10-01.csv", [
        ["phone", "07700 900123", "", "GB", "2026-01-15"],
        ["fax", "0207 946 0958", "", "GB", ""],              # not a kind of the contract
        ["PHONE", "+44 20 7946 0000", "", "GB", "15/01/2026"],  # kind in capitals, date unreadable: kept
        ["email", "x" * 300 + "@example.org", "", "", ""],  # longer than any email
    ])
    write(landing / "suppression/dnc_gb_2026-10-02.csv", b"kind,value,postcode,country,listed_at\nphone,0161,,GB\n")
    _register(landing, "mps_gb_2026-10-01.csv", [["postal", "1 High St"]], header=["kind", "value"])  # foreign header
    write(landing / "suppression/README.txt", b"registers go here\n")                                 # stray file
    stats, _ = _load(tmp_path, landing)
    assert (stats.files_seen, stats.files_loaded, stats.files_quarantined) == (4, 2, 2)
    assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (6, 2, 4)
    raw = _rows(tmp_path, "SELECT kind, value, listed_at, _source, _location, _record_ref, _content_hash "
                          "FROM raw.suppression_entries ORDER BY _location, _record_ref")
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert raw == [("phone", "07700 900123", "2026-01-15", "suppression", "suppression/dnc_gb_2026-10-01.csv", "2", digest),
                   ("PHONE", "+44 20 7946 0000", "15/01/2026", "suppression", "suppression/dnc_gb_2026-10-01.csv", "4", digest)]
    reasons = dict(((loc.rsplit("/", 1)[-1], ref), reason) for loc, ref, reason in _rows(
        tmp_path, "SELECT location, record_ref, reason FROM quarantine.rejected_records"))
    assert reasons[("dnc_gb_2026-10-01.csv", "3")].startswith("field 'kind' is not one of phone, email, postal")
    assert reasons[("dnc_gb_2026-10-01.csv", "5")].startswith("field 'value' is longer than 254 characters")
    assert reasons[("dnc_gb_2026-10-02.csv", "2")].startswith("wrong column count")
    assert reasons[("mps_gb_2026-10-01.csv", "file")].startswith("foreign header for suppression_entries")
    assert reasons[("README.txt", "file")] == "file name matches no suppression file family of the contract"
    with wh.connect(tmp_path / "w.duckdb", read_only=True) as con:
        report = account_files(con, SUPPRESSION.name)
    assert report["mismatches"] == [] and report["rows_read"] == 6
    # the register rejected whole held a record: the loss check names it; the stray file does not count
    assert [m.split(":")[0] for m in report["files_losing_rows"]] == ["suppression/mps_gb_2026-10-01.csv"]
    # the same files again: nothing loaded twice
    again, _ = _load(tmp_path, landing, "r2")
    assert (again.files_skipped, again.rows_read) == (4, 0)
    assert _rows(tmp_path, "SELECT count(*) FROM raw.suppression_entries") == [(2,)]


def test_the_newest_snapshot_of_a_register_replaces_the_older_ones(tmp_path):
    landing = tmp_path / "landing"
    _register(landing, "dnc_gb_2026-09-01.csv", [["phone", "07700 900001", "", "GB", ""],
                                                 ["phone", "07700 900002", "", "GB", ""]])
    _register(landing, "dnc_gb_2026-10-01.csv", [["phone", "07700 900002", "", "GB", ""],
                                                 ["phone", "07700 900003", "", "GB", ""]])
    _register(landing, "email_optout_2026-08-01.csv", [["email", "a@example.org", "", "", ""]])
    _register(landing, "archive/dnc_gb_2026-07-01.csv", [["phone", "07700 900009", "", "GB", ""]])  # older, in a subfolder
    _, counts = _load(tmp_path, landing)
    assert _rows(tmp_path, "SELECT count(*) FROM raw.suppression_entries") == [(6,)]  # every delivered row kept
    in_force = _rows(tmp_path, "SELECT register, CAST(snapshot_date AS VARCHAR), match_value FROM staging.suppression_entries "
                               "ORDER BY ALL")
    assert in_force == [("dnc_gb", "2026-10-01", "+447700900002"), ("dnc_gb", "2026-10-01", "+447700900003"),
                        ("email_optout", "2026-08-01", "a@example.org")]
    assert counts == {"rows": 3, "registers": 2, "phones": 2, "emails": 1, "postal": 0, "not_matchable": 0}

    # a newer snapshot rejected whole (renamed column) leaves the one in force: a broken delivery lifts no block
    _register(landing, "dnc_gb_2026-11-01.csv", [["phone", "07700 900004"]], header=["kind", "number"])
    _load(tmp_path, landing, "r2")
    assert _rows(tmp_path, "SELECT DISTINCT CAST(snapshot_date AS VARCHAR) FROM staging.suppression_entries "
                           "WHERE register = 'dnc_gb'") == [("2026-10-01",)]
    # its correction under the same name takes over; an empty snapshot empties a register
    _register(landing, "dnc_gb_2026-11-01.csv", [["phone", "07700 900004", "", "GB", ""]])
    _register(landing, "email_optout_2026-11-01.csv", [])
    _load(tmp_path, landing, "r3")
    assert _rows(tmp_path, "SELECT register, match_value FROM staging.suppression_entries ORDER BY ALL") == [
        ("dnc_gb", "+447700900004")]


def test_values_are_standardised_as_staging_does(tmp_path):
    landing = tmp_path / "landing"
    _register(landing, "mixed_2026-10-01.csv", [
        ["phone", "(030) 1234-5678", "", "DE", ""],        # national format, the row's country as region
        ["phone", "0044 7700 900123", "", "", ""],         # international, no country needed
        ["phone", "12", "", "GB", ""],                     # no possible number: matches nobody
        ["email", "  Anna.Schmidt@GMIAL.com ", "", "", "2025-02-03"],
        ["postal", "12 High Street, Flat 3", "sw1a1aa", "United Kingdom", ""],
        ["postal", "Hauptstraße 5", "", "DE", ""],          # no postcode: too vague to match
    ])
    _load(tmp_path, landing)
    rows = _rows(tmp_path, """SELECT kind, country, phone_e164, email, street, postcode, match_value, matchable,
        CAST(listed_at AS VARCHAR) FROM staging.suppression_entries ORDER BY _record_ref""")
    assert rows == [
        ("phone", "DE", "+493012345678", None, None, None, "+493012345678", True, None),
        ("phone", None, "+447700900123", None, None, None, "+447700900123", True, None),
        ("phone", "GB", None, None, None, None, None, False, None),
        ("email", None, None, "anna.schmidt@gmail.com", None, None, "anna.schmidt@gmail.com", True, "2025-02-03"),
        ("postal", "GB", None, None, "12 High Street, Flat 3", "SW1A 1AA", "12 high st flat 3|SW1A1AA", True, None),
        ("postal", "DE", None, None, "Hauptstraße 5", None, None, False, None),
    ]


def test_a_landing_folder_without_suppression_is_no_error(tmp_path):
    (tmp_path / "landing").mkdir()
    stats, counts = _load(tmp_path, tmp_path / "landing")
    assert stats.files_seen == 0 and counts["rows"] == 0
    assert _rows(tmp_path, "SELECT count(*) FROM raw.suppression_entries") == [(0,)]
    assert _rows(tmp_path, "SELECT count(*) FROM staging.suppression_entries") == [(0,)]


def _resources(landing, warehouse):
    return {"warehouse": WarehouseResource(path=str(warehouse)),
            "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")}


def _tick(landing, warehouse, cursor=None):
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor,
                                      resources=_resources(landing, warehouse))
    result = sensors.suppression_landing_sensor(context)
    return result.run_requests or [], result.cursor


def test_job_schedule_and_landing_sensor(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    _register(landing, "dnc_gb_2026-10-01.csv", [["phone", "07700 900123", "", "GB", ""]])
    definitions = load_defs()
    repo = definitions.get_repository_def()
    schedule = repo.get_schedule_def("suppression_schedule")
    assert schedule.job_name == "suppression_job" and schedule.cron_schedule == "45 2 * * *"
    assert sensors.suppression_landing_sensor.job_name == "suppression_job"
    # before any load: the new file starts the job
    [request], _ = _tick(landing, warehouse)
    assert request.tags["landing_first_file"] == "suppression/dnc_gb_2026-10-01.csv"
    result = definitions.resolve_job_def("suppression_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=_resources(landing, warehouse))
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"rows_accounted_for", "rows_lost_within_threshold"}
    assert all(c.passed for c in checks)
    # first tick after the load: what the warehouse holds is seen; a new snapshot starts a run
    requests, cursor = _tick(landing, warehouse)
    assert requests == [] and set(json.loads(cursor)) == {"suppression/dnc_gb_2026-10-01.csv"}
    _register(landing, "dnc_gb_2026-11-01.csv", [["phone", "07700 900124", "", "GB", ""]])
    [request], _ = _tick(landing, warehouse, cursor)
    assert request.tags["landing_files"] == "1"


def test_the_sample_writes_registers_that_load_cleanly_with_a_known_truth(tmp_path):
    import csv
    import datetime as dt

    from customer_pipeline.sample import generate

    landing = tmp_path / "landing"
    summary = generate(landing, persons=300, seed=3, as_of=dt.date(2026, 11, 1))["suppression"]
    assert set(summary) == {"dnc_national_2026-09-27", "dnc_national_2026-11-01", "email_optout_2026-11-01",
                            "mps_2026-11-01"}
    with open(landing / "suppression_truth.csv", encoding="utf-8", newline="") as f:
        truth = list(csv.DictReader(f))
    assert len(truth) == sum(s["entries"] for s in summary.values())
    assert sum(1 for t in truth if not t["person_id"]) == sum(s["nobody"] for s in summary.values()) == 12
    stats, counts = _load(tmp_path, landing)
    assert stats.rows_quarantined == 0 and stats.files_loaded == 4
    # only the newest DNC snapshot is in force, and every entry is a value that can match
    assert counts["rows"] == sum(s["entries"] for name, s in summary.items() if not name.endswith("09-27"))
    assert counts["not_matchable"] == 0
    # the register writes numbers differently from the sources: none of its DNC values is already E.164
    dnc = [t["value"] for t in truth if t["file"] == "dnc_national_2026-11-01.csv" and t["person_id"]]
    assert dnc and not any(v.startswith("+") and v[1:].isdigit() for v in dnc)
