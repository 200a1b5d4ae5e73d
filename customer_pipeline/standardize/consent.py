"""Consent and opt-outs: marketing consent, call-center opt-outs and do-not-call as explicit columns."""

import pandas as pd

from customer_pipeline.standardize._text import clean_text, map_unique
from customer_pipeline.standardize.dates import parse_timestamps

CONSENT_COLUMNS = ["marketing_consent", "marketing_consent_at", "opted_out", "opted_out_at", "do_not_call"]
_TRUE = frozenset({"y", "yes", "true", "t", "1", "j", "ja", "oui", "o", "si", "x", "on", "opt-in", "opt_in", "optin"})
_FALSE = frozenset({"n", "no", "false", "f", "0", "nein", "non", "nee", "off", "opt-out", "opt_out", "optout"})


def parse_flag(value) -> bool | None:
    """Y/N, true/false, 1/0 (and ja/nein, oui/non) to True/False; blank or unknown to None."""
    text = clean_text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


def parse_flags(raw: pd.Series) -> pd.Series:
    """Vectorised ``parse_flag`` as a nullable boolean Series (blank stays <NA>: not asked)."""
    return map_unique(raw, parse_flag).astype("boolean")


def standardize_consent(marketing_consent_raw: pd.Series, marketing_consent_at_raw: pd.Series,
                        opt_out_at_raw: pd.Series, do_not_call_raw: pd.Series) -> pd.DataFrame:
    """Consent columns; an opt-out counts when its timestamp field is filled, even if the timestamp is unreadable."""
    consent = parse_flags(marketing_consent_raw)
    opted_out_at = parse_timestamps(opt_out_at_raw)
    return pd.DataFrame({
        "marketing_consent": consent,
        # a statement time only means something when a statement was made
        "marketing_consent_at": parse_timestamps(marketing_consent_at_raw).where(consent.notna().to_numpy()),
        "opted_out": map_unique(opt_out_at_raw, clean_text).notna(),
        "opted_out_at": opted_out_at,
        "do_not_call": parse_flags(do_not_call_raw).fillna(False).astype(bool),
    }, index=marketing_consent_raw.index)
