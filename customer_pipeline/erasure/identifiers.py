"""What identifies one person: the identifier forms the register hashes and the arrival screen tests."""

from dataclasses import dataclass, field

from customer_pipeline.standardize.emails import normalize_email, standardize_email
from customer_pipeline.standardize.phones import standardize_phone


def email_forms(value) -> set[str]:
    """The address as staging compares it (trimmed, lower-cased) and with a mistyped domain corrected."""
    plain = normalize_email(value)
    if plain is None:
        return set()
    _, _, corrected, _ = standardize_email(value)
    return {plain} | ({corrected} if corrected else set())


def phone_e164(value, region: str | None) -> str | None:
    """E.164 as staging gives it, parsed in `region` when the number is written nationally."""
    e164, _, _ = standardize_phone(value, region)
    return e164


def phone_tail(value) -> str:
    """The last 8 digits, the same however the number was written (national, international, separators)."""
    return "".join(ch for ch in str(value) if ch.isdigit())[-8:]


def card(value) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


@dataclass
class Person:
    """Every key and identifier of the records resolved to one erasure request."""

    customers: set[str] = field(default_factory=set)      # golden customer ids (and ids merged into them)
    records: set[str] = field(default_factory=set)        # staging record ids `source|source_key`
    cards: set[str] = field(default_factory=set)
    shop_ids: set[str] = field(default_factory=set)
    guest_orders: set[str] = field(default_factory=set)
    contacts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)        # app anonymous ids
    emails: set[str] = field(default_factory=set)         # normalised forms
    phones: dict[str, str | None] = field(default_factory=dict)  # E.164 -> region it was read in
    delivered: set[str] = field(default_factory=set)      # identifier text as delivered (finds quarantine rows)

    def source_keys(self) -> set[str]:
        return {r for r in self.records}

    def register_entries(self) -> list[tuple[str, str, str | None]]:
        """(kind, value, region) of every identifier to hash into the register."""
        out = [("card", c, None) for c in self.cards]
        out += [("source_key", r, None) for r in self.records]
        out += [("source_key", f"shop|customer:{i}", None) for i in self.shop_ids]
        out += [("source_key", f"shop|guest_order:{i}", None) for i in self.guest_orders]
        out += [("source_key", f"call_center|contact:{i}", None) for i in self.contacts]
        out += [("source_key", f"app|user:{i}", None) for i in self.users]
        out += [("source_key", f"app|anon:{i}", None) for i in self.devices]
        out += [("email", e, None) for e in self.emails]
        out += [("phone", p, region) for p, region in self.phones.items()]
        # cheap first tests for arrivals (an email's local part, a phone's last digits), confirmed in full
        out += [("email_local", e.rpartition("@")[0], None) for e in self.emails]
        out += [("phone_tail", phone_tail(p), None) for p in self.phones]
        return sorted(set(out), key=lambda t: (t[0], t[1]))
