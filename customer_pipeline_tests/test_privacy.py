"""Personal data stays out of the event log: previews, check examples and logs are masked."""

import duckdb
import pandas as pd
import pytest

from customer_pipeline.cli import main
from customer_pipeline.privacy import mask_frame, mask_value, scrub_text


def test_masks_keep_the_shape_but_not_the_person():
    assert mask_value("email", "jane.doe@gmail.com") == "j***@gmail.com"
    assert mask_value("caller_phone", "+44 20 7946 1234") == "+44 **** **12 34"
    assert mask_value("first_name", "Jane") == "J***"
    assert mask_value("birth_date", "1980-04-02") == "1980-**-**"
    assert mask_value("birth_date", "02.04.1980") == "1980-**-**"
    assert mask_value("street", "12 Baker Street") == "1***"
    text = '{"traits": {"email": "x.y@web.de", "phone": "0171 2345678"}} call back on 030-1234567'
    scrubbed = scrub_text(text)
    assert "x.y@web.de" not in scrubbed and "2345678" not in scrubbed and "1234567" not in scrubbed
    assert mask_value("country", "DE") == "DE" and mask_value("qty", None) is None
    frame = mask_frame(pd.DataFrame({"email": ["a@b.de", None], "qty": [1, 2]}))
    assert frame["email"].tolist()[0] == "a***@b.de" and frame["qty"].tolist() == [1, 2]


@pytest.mark.slow
def test_event_log_holds_no_email_or_phone_of_the_sample(tmp_path, monkeypatch):
    landing, wh, home = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "dagster_home"
    for name, value in {"CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "CUSTOMER_PIPELINE_WAREHOUSE": str(wh),
                        "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", raising=False)
    assert main(["sample", "--persons", "200", "--seed", "9", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    with duckdb.connect(str(wh), read_only=True) as con:
        emails = {r[0].lower() for r in con.execute(
            "SELECT DISTINCT email_corrected FROM staging.person_records WHERE email_corrected LIKE '%@%'").fetchall()}
        phones = {r[0] for r in con.execute(
            "SELECT DISTINCT phone_e164 FROM staging.person_records WHERE phone_e164 IS NOT NULL").fetchall()}
        raw_phones = {r[0] for r in con.execute(
            "SELECT DISTINCT phone FROM raw.pos_loyalty_signups WHERE length(phone) >= 8").fetchall()}
    assert len(emails) > 50 and len(phones) > 50
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files), "the run must have written Dagster's run storage"
    hits = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="ignore").lower()
        hits += [(path.name, e) for e in emails if e in text]
        hits += [(path.name, p) for p in phones | raw_phones if p.lower() in text]
    assert hits == [], f"{len(hits)} personal values in the event log, e.g. {hits[:5]}"
    # the charts show the warehouse's own records: they live beside it, not in a folder every warehouse shares
    assert (tmp_path / "w.artifacts" / "identity" / "comparison_viewer.html").is_file()
