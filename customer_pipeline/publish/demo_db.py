"""`make demo` publishes to a local PostgreSQL when one answers: make sure the demo database exists.

    python -m customer_pipeline.publish.demo_db postgresql+psycopg2://postgres@127.0.0.1:5432/customer_demo

Exit 0 (and print where the gold layer will be published) when the server answers and the database
exists or was created; exit 1 with one line saying why the demo keeps the gold layer in DuckDB only.
"""

import sys

import sqlalchemy as sa

from customer_pipeline.publish.postgres import normalise_pg_url


def ensure_database(url: str, connect_timeout: int = 3) -> str:
    """Create the URL's database when missing (connecting to the server's `postgres` database); return its name."""
    target = sa.make_url(normalise_pg_url(url))
    name = target.database
    if not name:
        raise ValueError(f"no database named in {target.render_as_string(hide_password=True)}")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": connect_timeout})
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(name)
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m customer_pipeline.publish.demo_db <postgresql URL>", file=sys.stderr)
        return 2
    url = sa.make_url(normalise_pg_url(args[0]))
    shown = url.render_as_string(hide_password=True)
    try:
        ensure_database(args[0])
    except Exception as exc:  # any driver error means the same thing here: no PostgreSQL for the demo
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"PostgreSQL not used for the demo ({shown}: {reason}); the gold layer stays in DuckDB. "
              "Set DEMO_PG_URL or CUSTOMER_PIPELINE_PG_URL to publish elsewhere.")
        return 1
    print(f"the gold layer will also be published to PostgreSQL: {shown} (schema gold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
