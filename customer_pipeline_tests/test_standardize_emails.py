"""E-mails: normalisation, syntax, typo domains, suppression from email events."""

import pandas as pd
import pytest

from customer_pipeline.standardize.emails import (
    apply_suppression, correct_domain, standardize_email, standardize_emails,
)


@pytest.mark.parametrize("raw, corrected", [
    ("x@gmial.com", "x@gmail.com"), ("x@gmai.com", "x@gmail.com"), ("x@hotmial.com", "x@hotmail.com"),
    ("x@yaho.com", "x@yahoo.com"), ("x@outlok.com", "x@outlook.com"), ("x@gmx.dee", "x@gmx.de"),
    ("x@gmail.con", "x@gmail.com"), ("x@gmail", "x@gmail.com"), (" John.Smith@GMIAL.COM ", "john.smith@gmail.com"),
])
def test_typo_domains_corrected(raw, corrected):
    email, _, email_corrected, typo = standardize_email(raw)
    assert email == raw.strip().lower()
    assert (email_corrected, typo) == (corrected, True)


@pytest.mark.parametrize("domain", ["gmail.com", "ymail.com", "mail.com", "gmx.net", "gmx.com", "web.de", "example.org", "company.co.uk"])
def test_real_domains_not_corrected(domain):
    assert correct_domain(domain) is None
    assert standardize_email(f"a.b@{domain}") == (f"a.b@{domain}", True, f"a.b@{domain}", False)


@pytest.mark.parametrize("raw", ["not-an-email", "a@@b.com", "a..b@c.de", "a@b", "a b@c.de", "a@localhost"])
def test_invalid_syntax(raw):
    email, valid, corrected, typo = standardize_email(raw)
    assert email is not None and valid is False and corrected is None and typo is False


def test_international_address_is_valid():
    assert standardize_email("Zoë.Müller@Web.de")[:3] == ("zoë.müller@web.de", True, "zoë.müller@web.de")


@pytest.mark.parametrize("junk", [None, float("nan"), "", "   ", "\ufeff"])
def test_blank_is_null(junk):
    assert standardize_email(junk) == (None, False, None, False)


def test_bom_is_stripped():
    assert standardize_email("\ufeffanna@web.de")[0] == "anna@web.de"


def test_vectorised():
    out = standardize_emails(pd.Series(["a@gmial.com", None, "a@gmial.com", "bad"]))
    assert out["email_corrected"].tolist() == ["a@gmail.com", None, "a@gmail.com", None]
    assert out["email_valid"].tolist() == [True, False, True, False]


def test_suppression_matches_normalised_email_and_keeps_most_severe():
    events = pd.DataFrame({
        "email": [" A@Web.de", "a@web.de", "b@web.de", "c@web.de", "c@web.de"],
        "kind": ["unsubscribe", "bounce", "unsubscribe", "complaint", "bounce"],
        "occurred_at": ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00+01:00", "2024-03-01", "2024-04-01", "2024-05-01"],
    })
    out = apply_suppression(pd.Series(["a@web.de", "b@web.de", "c@web.de", "d@web.de", None]), events)
    assert out["email_suppressed"].tolist() == [True, False, True, False, False]
    assert out["email_unsubscribed"].tolist() == [True, True, False, False, False]
    assert out["email_suppression_reason"].tolist() == ["bounce", "unsubscribe", "complaint", None, None]
    assert out["email_suppressed_at"][0] == pd.Timestamp("2024-01-31 23:00:00")
    assert out["email_unsubscribed_at"][1] == pd.Timestamp("2024-03-01")


def test_no_events():
    out = apply_suppression(pd.Series(["a@web.de"]), None)
    assert out["email_suppressed"].tolist() == [False] and out["email_suppression_reason"].isna().all()
