"""Names: titles, free text, swaps, display and matching forms, gender coherence."""

import pandas as pd
import pytest

from customer_pipeline.standardize.names import (
    normalize_gender, parse_full_name, proper_case, standardize_name, standardize_names, title_gender_conflicts,
)


@pytest.mark.parametrize("first, last, display, norm", [
    ("José", "García", ("José", "García"), ("jose", "garcia")),
    ("  hans ", "MÜLLER", ("Hans", "Müller"), ("hans", "muller")),
    ("zoë", "o’brien", ("Zoë", "O'Brien"), ("zoe", "obrien")),
    ("JOHN", "MCDONALD", ("John", "McDonald"), ("john", "mcdonald")),
    ("anne-marie", "VAN DER BERG", ("Anne-Marie", "van der Berg"), ("anne marie", "van der berg")),
    ("\ufeffAnna", "Schmidt", ("Anna", "Schmidt"), ("anna", "schmidt")),
    ("Ｊｏｈｎ", "Smith", ("John", "Smith"), ("john", "smith")),  # full-width letters (NFKC)
])
def test_display_and_matching_forms(first, last, display, norm):
    r = standardize_name(first, last)
    assert (r.first_name, r.last_name) == display
    assert (r.first_name_norm, r.last_name_norm) == norm
    assert r.name_key == f"{norm[1]} {norm[0]}"
    assert r.name_swapped is False


def test_deliberate_mixed_case_is_kept():
    assert proper_case("DeShawn") == "DeShawn"
    assert proper_case("mackenzie", surname=True) == "MacKenzie"
    assert proper_case("mack", surname=True) == "Mack"


@pytest.mark.parametrize("first, last, title", [
    ("Mr John", "Smith", "Mr"), ("Dr. Anna", "Schmidt", "Dr"), ("Frau Petra", "Meier", "Frau"),
    ("Mme Claire", "Dubois", "Mme"), ("M. Jean", "Dupont", "M."), ("Herr Prof. Dr. Klaus", "Weber", "Herr Prof Dr"),
])
def test_titles_removed_and_returned(first, last, title):
    r = standardize_name(first, last)
    assert r.title == title
    assert r.first_name not in (None, "") and r.first_name.split()[0] not in ("Mr", "Dr", "Frau", "Mme", "M.", "Herr")


@pytest.mark.parametrize("text, expected", [
    ("Smith, John", (None, "John", "Smith")),
    ("Mr J. Smith", ("Mr", "J.", "Smith")),
    ("john smith", (None, "john", "smith")),
    ("DUPONT Jean", (None, "Jean", "DUPONT")),
    ("Frau Dr. Petra Meier", ("Frau Dr", "Petra", "Meier")),
    ("jan van der berg", (None, "jan", "van der berg")),
    ("Smith, Mrs Jane", ("Mrs", "Jane", "Smith")),
])
def test_parse_full_name(text, expected):
    titles, first, last, _ = parse_full_name(text)
    assert (" ".join(titles) or None, first, last) == expected


def test_free_text_through_standardize_name():
    r = standardize_name(None, None, "Mr J. Smith")
    assert (r.title, r.first_name, r.last_name, r.name_key) == ("Mr", "J.", "Smith", "smith j")


@pytest.mark.parametrize("first, last", [("Smith", "John"), ("Müller", "Hans"), ("de Vries", "Jan"), ("Dupont", "Jean")])
def test_swapped_names_are_corrected(first, last):
    r = standardize_name(first, last)
    assert r.name_swapped is True
    assert (r.first_name, r.last_name) == (proper_case(last), proper_case(first, surname=True))


@pytest.mark.parametrize("first, last", [("Thomas", "Morgan"), ("Morgan", "Thomas"), ("Jean", "Martin"), ("Xyzzy", "John")])
def test_ambiguous_or_unknown_names_are_not_swapped(first, last):
    assert standardize_name(first, last).name_swapped is False


def test_comma_form_is_explicit_and_never_swapped():
    r = standardize_name(None, None, "John, Smith")  # the agent said so: last name John
    assert (r.first_name, r.last_name, r.name_swapped) == ("Smith", "John", False)


@pytest.mark.parametrize("junk", [None, float("nan"), pd.NA, "", "   ", "\ufeff", "\u200b", "nan", "N/A"])
def test_junk_gives_nulls_not_errors(junk):
    r = standardize_name(junk, junk, junk)
    assert (r.first_name, r.last_name, r.name_key, r.title, r.name_swapped) == (None, None, None, None, False)


def test_vectorised_matches_scalar():
    first = pd.Series(["Smith", "Smith", None, "Mr John", ""])
    last = pd.Series(["John", "John", None, "Smith", "Müller"])
    full = pd.Series([None, None, "Smith, John", None, None])
    out = standardize_names(first, last, full)
    assert out["name_key"].tolist() == ["smith john", "smith john", "smith john", "smith john", "muller"]
    assert out["name_swapped"].tolist() == [True, True, False, False, False]
    assert out["title"].tolist()[3] == "Mr"


@pytest.mark.parametrize("raw, expected", [("M", "M"), (" f ", "F"), ("x", "X"), ("weiblich", "F"), ("?", None), ("", None), (None, None)])
def test_normalize_gender(raw, expected):
    assert normalize_gender(raw) == expected


def test_title_gender_conflict():
    title = pd.Series(["Mrs", "Mr", "Dr", "Mrs", None, "Herr Dr"])
    gender = pd.Series(["M", "M", "F", None, "M", "F"])
    assert title_gender_conflicts(title, gender).tolist() == [True, False, False, False, False, True]


def test_names_parsed_in_worker_processes_equal_the_serial_result(monkeypatch):
    from customer_pipeline.standardize import names

    first = pd.Series(["anna", "SCHMIDT", None, "Mr J.", "", "van der Berg", "Jean", None, "x\x1fy"] * 3)
    last = pd.Series(["schmidt", "Anna", None, "Smith", "Dupont", "Piet", "DUPONT", "Müller-Lüdenscheidt", None] * 3)
    full = pd.Series([None, None, "Smith, John", None, "Mme Claire", None, None, None, "Dr. Herr Otto"] * 3)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "0")
    serial = standardize_names(first, last, full)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "2")
    monkeypatch.setattr(names, "PARALLEL_MIN_NAMES", 1)
    pooled = standardize_names(first, last, full)
    pd.testing.assert_frame_equal(pooled, serial)
    assert serial.loc[1, "first_name"] == "Anna" and serial.loc[1, "name_swapped"]
