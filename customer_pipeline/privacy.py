"""Personal data stays in the tables that hold it: masks for what previews, check examples and logs show.

The Dagster event log (run storage) cannot be erased per person, so nothing personal may reach it:
emails show as `j***@gmail.com`, phones as `+44 **** **12 34`, names as `J***`, birth dates as `1980-**-**`;
free text (notes, JSON payloads) has every email-like and phone-like run masked.
"""

import re

import pandas as pd

_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# seven or more digits, possibly separated by spaces, dots, dashes, slashes or brackets (a phone number)
_PHONE = re.compile(r"\+?\(?\d(?:[\s.\-/()]*\d){6,}")
_DATE = re.compile(r"\b(\d{4})-\d{2}-\d{2}\b|\b\d{1,2}[./]\d{1,2}[./](\d{4})\b")

# Column names (any source's) whose values are a person's name, birth date, street or free text.
_NAME_COLUMNS = re.compile(r"(^|_)(first_?name|last_?name|given_name|surname|name|caller_name|name_key|guest_first_name"
                           r"|guest_last_name|firstname|lastname)(_norm|_raw|_l|_r)?$", re.IGNORECASE)
_BIRTH_COLUMNS = re.compile(r"birth", re.IGNORECASE)
_STREET_COLUMNS = re.compile(r"(street|line1|line2|address)", re.IGNORECASE)


def mask_email(value: str) -> str:
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    def one(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        head = "+" + digits[:2] if m.group(0).startswith("+") else ""
        return f"{head} **** **{digits[-4:-2]} {digits[-2:]}".strip()

    return _PHONE.sub(one, value)


def scrub_text(value: str) -> str:
    """Free text with every email- and phone-like part masked (dates and the rest left as they are)."""
    return mask_phone(mask_email(value))


def mask_value(column: str, value):
    """One value as a preview or a check example may show it, by what its column holds."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA or value is pd.NaT:
        return value
    text = str(value)
    if _BIRTH_COLUMNS.search(column):
        return _DATE.sub(lambda m: f"{m.group(1) or m.group(2)}-**-**", text) if _DATE.search(text) else "****"
    if _NAME_COLUMNS.search(column) or _STREET_COLUMNS.search(column):
        return f"{text[:1]}***" if text.strip() else text
    return scrub_text(text)


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy fit for a preview: every value masked by its column (see `mask_value`)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype) or _BIRTH_COLUMNS.search(col):
            out[col] = out[col].astype(object).map(lambda v, c=col: mask_value(c, v))
    return out
