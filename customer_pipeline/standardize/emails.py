"""E-mail addresses: normalisation, syntax check, domain typo correction, suppression state."""

import re
from functools import lru_cache

import pandas as pd
from email_validator import EmailNotValidError, validate_email

from customer_pipeline.standardize._text import clean_text, map_unique, map_unique_tuple

# Providers whose near-misses are corrected (edit distance 1).
_MAJOR_DOMAINS = (
    "gmail.com", "googlemail.com", "hotmail.com", "hotmail.de", "hotmail.fr", "hotmail.co.uk",
    "outlook.com", "outlook.de", "outlook.fr", "yahoo.com", "yahoo.de", "yahoo.fr", "yahoo.co.uk",
    "icloud.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "aol.com", "live.com", "orange.fr",
    "wanadoo.fr", "laposte.net", "btinternet.com", "ziggo.nl", "kpnmail.nl", "comcast.net",
    "protonmail.com", "freenet.de", "posteo.de",
)
# Real domains one edit away from a major one: never "corrected".
_KNOWN_DOMAINS = frozenset(_MAJOR_DOMAINS) | {
    "ymail.com", "mail.com", "gmx.com", "gmx.at", "gmx.ch", "gmx.fr", "live.de", "live.fr", "live.nl",
    "live.co.uk", "me.com", "mac.com", "msn.com", "aim.com", "free.fr", "sfr.fr", "yahoo.es",
    "yahoo.it", "hotmail.es", "hotmail.it", "hotmail.nl", "outlook.es", "outlook.it", "web.com",
    "example.com", "example.org", "example.net", "proton.me", "online.de", "email.de", "sky.com",
}
_EXPLICIT_TYPOS = {
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gamil.com": "gmail.com", "gmal.com": "gmail.com",
    "gmail": "gmail.com", "hotmail": "hotmail.com", "yahoo": "yahoo.com", "outlook": "outlook.com",
    "hotmial.com": "hotmail.com", "yaho.com": "yahoo.com", "outlok.com": "outlook.com", "gmx.dee": "gmx.de",
}
# TLD slips on any domain: x.con -> x.com.
_TLD_TYPOS = {"con": "com", "cmo": "com", "ocm": "com", "comm": "com", "coom": "com", "vom": "com",
              "xom": "com", "dee": "de", "ed": "de", "nte": "net", "nett": "net", "ent": "net"}
_SEVERITY = {"complaint": 3, "bounce": 2, "unsubscribe": 1}
EMAIL_COLUMNS = ["email", "email_valid", "email_corrected", "email_domain_typo"]
_MAILTO = re.compile(r"^mailto:", re.I)
# RFC 5322 dot-atom with ASCII atext, at most 64 characters
_PLAIN_LOCAL = re.compile(r"(?=.{1,64}$)[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+)*")


def normalize_email(value) -> str | None:
    """Trimmed, lower-cased address; blank, junk or an address without '@' content becomes None."""
    text = clean_text(value)
    if text is None:
        return None
    text = _MAILTO.sub("", text).strip("<>\"' ;,").lower()
    return text or None


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one insert, delete, substitute or adjacent swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1:] == b[i + 1:] or (a[i:i + 2] == b[i:i + 2][::-1] and a[i + 2:] == b[i + 2:])
    return (a[i + 1:] == b[i:]) if la > lb else (a[i:] == b[i + 1:])


@lru_cache(maxsize=50_000)
def correct_domain(domain: str) -> str | None:
    """The intended domain for an obvious typo (gmial.com -> gmail.com), else None."""
    domain = domain.strip(".").replace(",", ".")
    if domain in _KNOWN_DOMAINS:
        return None
    if domain in _EXPLICIT_TYPOS:
        return _EXPLICIT_TYPOS[domain]
    stem, _, tld = domain.rpartition(".")
    if stem and tld in _TLD_TYPOS:
        fixed = f"{stem}.{_TLD_TYPOS[tld]}"
        return fixed if fixed != domain else None
    matches = [d for d in _MAJOR_DOMAINS if _within_one_edit(domain, d)]
    return matches[0] if len(matches) == 1 else None


def _validates(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@lru_cache(maxsize=100_000)
def _domain_valid(domain: str) -> bool:
    return _validates(f"probe@{domain}")


_FORMULA_START = ("=", "+", "-", "@")


def _is_valid(address: str) -> bool:
    """email-validator's verdict; a plain dot-atom local part reuses the verdict on its domain."""
    local, at, domain = address.rpartition("@")
    if address.startswith(_FORMULA_START):
        # RFC 5322 allows `=1+1@x.com`, but no mailbox of a person starts like a spreadsheet formula,
        # and a valid email reaches gold, where BI tools would evaluate it (OWASP CSV injection)
        return False
    if at and len(address) <= 254 and _PLAIN_LOCAL.fullmatch(local):
        # such a local part always passes email-validator, so only the (cached) domain can fail
        return _domain_valid(domain)
    return _validates(address)


def standardize_email(value) -> tuple[str | None, bool, str | None, bool]:
    """(email, email_valid, email_corrected, email_domain_typo) for one raw value."""
    email = normalize_email(value)
    if email is None:
        return None, False, None, False
    valid = _is_valid(email)
    local, at, domain = email.rpartition("@")
    fixed_domain = correct_domain(domain) if at and local else None
    if fixed_domain:
        corrected = f"{local}@{fixed_domain}"
        if _is_valid(corrected):
            return email, valid, corrected, True
    return email, valid, (email if valid else None), False


def standardize_emails(raw: pd.Series) -> pd.DataFrame:
    """Vectorised ``standardize_email``; each distinct raw value is validated once."""
    cols = map_unique_tuple(raw, standardize_email, len(EMAIL_COLUMNS))
    out = pd.DataFrame(dict(zip(EMAIL_COLUMNS, cols)), index=raw.index)
    for col in ("email_valid", "email_domain_typo"):
        out[col] = out[col].astype(bool)
    return out


def suppression_table(email_events: pd.DataFrame | None) -> pd.DataFrame:
    """Per normalised email: suppressed/unsubscribed flags, their latest timestamps and the most severe reason."""
    cols = ["email_suppressed", "email_suppressed_at", "email_unsubscribed", "email_unsubscribed_at",
            "email_suppression_reason"]
    if email_events is None or email_events.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="email"))
    from customer_pipeline.standardize.dates import parse_timestamps

    ev = pd.DataFrame({
        "email": map_unique(email_events["email"], normalize_email),
        "kind": map_unique(email_events["kind"], lambda k: (clean_text(k) or "").lower() or None),
        "at": parse_timestamps(email_events["occurred_at"]) if "occurred_at" in email_events else pd.NaT,
    }).dropna(subset=["email"])
    ev = ev[ev["kind"].isin(list(_SEVERITY))]
    ev["severity"] = ev["kind"].map(_SEVERITY)
    hard = ev["kind"].isin(["bounce", "complaint"])
    grouped = ev.groupby("email")
    table = pd.DataFrame({
        "email_suppressed": hard.groupby(ev["email"]).any(),
        "email_suppressed_at": ev["at"].where(hard).groupby(ev["email"]).max(),
        "email_unsubscribed": (ev["kind"] == "unsubscribe").groupby(ev["email"]).any(),
        "email_unsubscribed_at": ev["at"].where(ev["kind"] == "unsubscribe").groupby(ev["email"]).max(),
        "email_suppression_reason": ev.loc[grouped["severity"].idxmax(), ["email", "kind"]].set_index("email")["kind"],
    })
    return table


def apply_suppression(match_email: pd.Series, email_events: pd.DataFrame | None) -> pd.DataFrame:
    """Suppression columns for each record, matched on its (corrected) normalised email."""
    table = suppression_table(email_events)
    joined = pd.DataFrame({"email": match_email.astype(object)}, index=match_email.index).join(table, on="email")
    out = joined.drop(columns="email")
    for col in ("email_suppressed", "email_unsubscribed"):
        out[col] = out[col].astype(object).fillna(False).astype(bool)
    for col in ("email_suppressed_at", "email_unsubscribed_at"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
    out["email_suppression_reason"] = out["email_suppression_reason"].astype(object).where(
        out["email_suppression_reason"].notna(), None)
    return out


__all__ = ["standardize_email", "standardize_emails", "normalize_email", "correct_domain",
           "suppression_table", "apply_suppression", "EMAIL_COLUMNS"]
