"""`customer-pipeline`: generate sample data, or run the whole asset graph once in process."""

import argparse
import atexit
import datetime as dt
import os
import sys
import time
from pathlib import Path

from customer_pipeline.progress import failure_reason
from customer_pipeline.settings import Settings


class PreflightError(Exception):
    """A setting points at something that is not there; the run cannot start."""


def _sample(args: argparse.Namespace) -> int:
    from customer_pipeline.sample import generate

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    started = time.perf_counter()
    summary = generate(Path(args.out), persons=args.persons, seed=args.seed, as_of=as_of)
    print(f"sample data for {args.persons} persons (seed {args.seed}) written to {args.out} "
          f"in {time.perf_counter() - started:.1f}s")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def preflight(settings: Settings) -> None:
    """Fail fast with one clear line when a source location or the warehouse is unusable."""
    from customer_pipeline.ingest.shop import SourceError, check_source

    if not settings.landing_dir.is_dir():
        raise PreflightError(f"landing folder not found: {settings.landing_dir} (set CUSTOMER_PIPELINE_LANDING_DIR)")
    url = settings.shop_db_url
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.is_file():
            raise PreflightError(f"shop database not found: {path} (set SHOP_DB_URL)")
    try:
        check_source(url)  # a bad URL or credential, a missing database, table or column: one line each
    except SourceError as exc:
        raise PreflightError(str(exc)) from exc
    from customer_pipeline.defs.identity import settings as identity_settings

    for name, read in (("CUSTOMER_PIPELINE_ACCEPT_WEIGHT", identity_settings.accept_weight),
                       ("CUSTOMER_PIPELINE_REVIEW_LOW_WEIGHT", identity_settings.review_low_weight),
                       ("CUSTOMER_PIPELINE_NAME_ONLY_ACCEPT_WEIGHT", identity_settings.name_only_accept_weight)):
        try:
            read()
        except ValueError:
            raise PreflightError(f"{name} is not a number (a match weight, e.g. 9.0)") from None
    import duckdb

    from customer_pipeline import warehouse

    try:
        with warehouse.connect(settings.warehouse_path):
            pass
    except duckdb.IOException as exc:
        raise PreflightError(f"warehouse {settings.warehouse_path} cannot be opened: {str(exc).splitlines()[0]}") from exc


def _instance():
    import dagster as dg

    if os.environ.get("DAGSTER_HOME", "").strip():
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def run_pipeline(settings: Settings, full: bool = False) -> tuple[int, str]:
    """Materialise every asset once (`full`: everything again, nothing incremental), the later stages only
    when something they read changed (customer_pipeline/runner.py); returns (exit status, one-line reason)."""
    from customer_pipeline import runner
    from customer_pipeline.progress import QUIET_RUN_CONFIG, listener

    with _instance() as instance:
        out = runner.run(instance, settings.warehouse_path, full=full, listener=listener,
                         run_config=QUIET_RUN_CONFIG)
    done = out.materialized
    succeeded = out.succeeded_steps
    # an asset whose step succeeded without materialising it had nothing to do (charts already drawn)
    idle = sorted(k for k in out.planned - done if k.replace("/", "__") in succeeded)
    left = set(out.not_started) | set(out.raw_unchanged) | ({runner.MODEL.to_user_string()} if out.model_kept else set())
    held_back = sorted(out.planned - done - set(idle) - left)
    if out.raw_unchanged:
        print(f"\nraw loads not run, no new or corrected file in their landing folders: {', '.join(out.raw_unchanged)}")
    print(f"\n{out.gate}")
    if idle:
        print(f"\nnothing to do (step succeeded, not materialised): {', '.join(idle)}")
    if out.model_kept:
        print("identity/splink_model: not run, the warehouse has its model (retrain: job retrain_identity_model)")
    if held_back:
        print(f"\nheld back (not materialised this run): {', '.join(held_back)}")
    failed_checks = out.failed_blocking_checks()
    _print_summary(settings, out.run_ids)
    if failed_checks:
        return 1, f"blocking check failed: {', '.join(failed_checks)}"
    if not out.success:
        failures = out.step_failures()
        if failures:
            return 1, f"step {failures[0].step_key} failed: {failure_reason(failures[0].event_specific_data)}"
        return 1, "run failed"
    if out.not_started:
        return 0, "nothing new: the later stages were not started (the raw layer's checks passed)"
    return 0, "all blocking checks passed"


def _print_summary(settings: Settings, run_ids: list[str]) -> None:
    from customer_pipeline import progress, summary, warehouse
    from customer_pipeline.defs.identity import settings as identity_settings

    # what the runs' event logs said, as the progress listener collected them (the raw layer's run first)
    log = progress.merged([progress.take_run_log(r) for r in run_ids])
    run_id = run_ids[0]
    ran_identity = "gold/customer_xref" in log.materialized
    since = (dt.datetime.fromtimestamp(log.started_at, dt.UTC).replace(tzinfo=None)
             if log.started_at is not None and ran_identity else None)
    extra: list[str] = summary.step_lines(log) + summary.check_lines(log)
    published = _published_lines(settings)
    with warehouse.connect(settings.warehouse_path) as con:
        extra += summary.identity_lines(
            con, since=since, ran=ran_identity, accept_weight=identity_settings.accept_weight(),
            charts_dir=identity_settings.charts_dir(), truth_csv=settings.landing_dir / "truth.csv")
        try:
            from customer_pipeline.quality.report import headline_figures, history_line
        except ImportError:
            extra.append("\nData quality: stage 'quality' not built yet")
        else:
            extra += ["", "Data quality (headline)"] + [f"  {line}" for line in headline_figures(con)]
            extra += [f"  {line}" for line in history_line(con, settings.quality_retention_days,
                                                           settings.quality_trend_days if settings.pg_url else None)]
        from customer_pipeline.freshness import freshness_lines

        ran_marts = "gold/customer_purchases" in log.materialized  # every other mart is built from it
        extra += summary.marts_lines(con, ran_marts) + freshness_lines(con) + published
        print(summary.render(con, run_id, extra))


def _published_lines(settings: Settings) -> list[str]:
    """What PostgreSQL now serves to BI, read back from it (nothing when publishing is off)."""
    if not settings.pg_url:
        return ["", "PostgreSQL: publishing is off (set CUSTOMER_PIPELINE_PG_URL)"]
    import sqlalchemy as sa

    from customer_pipeline.publish.postgres import (
        GOLD_SPECS, QUALITY_LATEST_VIEW, QUALITY_TABLE, bi_role_for, normalise_pg_url)

    url = sa.make_url(normalise_pg_url(settings.pg_url))
    lines = ["", f"PostgreSQL ({url.render_as_string(hide_password=True)}, schema gold, read by role {bi_role_for(settings.pg_url, settings.bi_role)})"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            present = {r[0] for r in conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gold'"))}
            for name in [*GOLD_SPECS, QUALITY_LATEST_VIEW]:
                if name in present:
                    n = conn.execute(sa.text(f'SELECT count(*) FROM gold."{name}"')).scalar_one()
                    note = ""
                    if name == QUALITY_TABLE:
                        runs = conn.execute(sa.text(f'SELECT count(DISTINCT run_id) FROM gold."{name}"')).scalar_one()
                        note = f"  trend: {runs} run(s), the newest of each of the last {settings.quality_trend_days} days"
                    elif name == QUALITY_LATEST_VIEW:
                        note = "  view: the newest run"
                    lines.append(f"  gold.{name:34s} {n:9d}{note}")
    except Exception as exc:  # a summary line, not a failure: the run's own status says what failed
        lines.append(f"  could not read it back: {str(exc).strip().splitlines()[0]}")
    finally:
        engine.dispose()
    return lines


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    print(f"landing: {settings.landing_dir}\nshop:    {settings.shop_db_url}\nwarehouse: {settings.warehouse_path}")
    started = time.perf_counter()
    try:
        preflight(settings)
        status, reason = run_pipeline(settings, full=args.full)
    except PreflightError as exc:
        print(f"customer-pipeline run: {exc}", file=sys.stderr)
        return 2
    print(f"\nrun finished in {time.perf_counter() - started:.1f}s: {reason}")
    if status:
        print(f"customer-pipeline run: {reason}", file=sys.stderr)
    return status


def _erase(args: argparse.Namespace) -> int:
    from customer_pipeline.erasure.resolve import ErasureError, Request
    from customer_pipeline.erasure.service import erase

    settings = Settings.from_env()
    request = Request(customer_id=args.customer_id, email=args.email, phone=args.phone,
                      source_key=args.source_key, country=args.country)
    try:
        report = erase(settings.warehouse_path, request, pg_url=settings.pg_url, request_id=args.request_id,
                       redraw_charts=not args.no_redraw)
    except ErasureError as exc:
        print(f"customer-pipeline erase: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if not report.records and not report.identifiers:
        print(f"customer-pipeline erase: nobody found for {request.kind()} (nothing registered)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="customer-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write sample data for all four sources, with truth.csv")
    sample.add_argument("--persons", type=int, default=2000)
    sample.add_argument("--seed", type=int, default=42)
    sample.add_argument("--out", default="data/landing")
    sample.add_argument("--as-of", default=None, help="YYYY-MM-DD the newest files are dated (default yesterday, UTC)")
    sample.set_defaults(fn=_sample)
    run = sub.add_parser("run", help="materialise the whole asset graph once, in process")
    run.add_argument("--full", action="store_true",
                     help="rebuild everything: standardise, score, cluster and validate every record again")
    run.set_defaults(fn=_run)
    erase = sub.add_parser("erase", help="erase one person from every layer (GDPR art. 17; docs/erasure.md)")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id", help="a golden customer id (C...)")
    who.add_argument("--email")
    who.add_argument("--phone", help="international (+44...) or national with --country")
    who.add_argument("--source-key", help="SOURCE:KEY, e.g. pos:card:295201355871, shop:customer:10001")
    erase.add_argument("--country", help="ISO country of a phone written nationally")
    erase.add_argument("--request-id", help="the request's reference (default: a new uuid)")
    erase.add_argument("--no-redraw", action="store_true", help="delete the identity dashboards, do not redraw them")
    erase.set_defaults(fn=_erase)
    args = parser.parse_args(argv)
    return args.fn(args)


def exit_now(status: int) -> None:
    """Exit without the interpreter's teardown of every loaded module (0.7 s with Dagster, pandas and DuckDB
    loaded: a seventh of a run with nothing new at 1M records). Every warehouse connection, process pool and
    Dagster instance is closed by then; the exit handlers (logging, temporary folders) still run."""
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(status)


def entry() -> None:
    """The `customer-pipeline` command."""
    exit_now(main())


if __name__ == "__main__":
    entry()
