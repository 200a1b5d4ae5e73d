"""The same person out of the gold tables published to PostgreSQL, in one transaction."""

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from customer_pipeline.erasure.identifiers import Person
from customer_pipeline.publish.postgres import normalise_pg_url

# every other published table with a customer_id loses the person's rows (xref, golden record, marts)
HANDLED = ("customer_purchases", "customer_id_history")


def erase_published(pg_url: str, person: Person, households: list[tuple[str, int | None]]) -> dict[str, int]:
    """Rows removed (or anonymised) per published table; tables not published are left alone."""
    customers = sorted(person.customers)
    keys = sorted(r.partition("|")[2] for r in person.records)
    gone = [h for h, n in households if n is None]
    removed: dict[str, int] = {}
    engine = sa.create_engine(normalise_pg_url(pg_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:  # all or nothing
            present = {r[0] for r in conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gold'"))}
            by_customer = sorted({r[0] for r in conn.execute(sa.text(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'gold' "
                "AND column_name = 'customer_id'"))} - set(HANDLED))

            def run(table: str, statement: str, **params) -> None:
                if table in present:
                    removed[f"pg gold.{table}"] = conn.execute(sa.text(statement), params).rowcount

            for table in by_customer:
                run(table, f'DELETE FROM gold."{table}" WHERE customer_id = ANY(:ids)', ids=customers)
            run("customer_id_history", "DELETE FROM gold.customer_id_history WHERE old_id = ANY(:ids) OR new_id = ANY(:ids)",
                ids=customers)
            run("customer_purchases", "UPDATE gold.customer_purchases SET customer_id = NULL, source_key = NULL "
                "WHERE customer_id = ANY(:ids) OR source_key = ANY(:keys)", ids=customers, keys=keys)
            run("households", "DELETE FROM gold.households WHERE household_id = ANY(:gone)", gone=gone)
            run("household_id_history", "DELETE FROM gold.household_id_history WHERE old_id = ANY(:gone) "
                "OR new_id = ANY(:gone)", gone=gone)
            if "households" in present:
                for household, members in households:
                    if members is not None:
                        conn.execute(sa.text("UPDATE gold.households SET members = :n WHERE household_id = :h"),
                                     {"n": members, "h": household})
    finally:
        engine.dispose()
    return removed
