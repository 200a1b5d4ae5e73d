"""Every quality threshold in one place: what the business tolerates before someone must look.

Blocking expectations stop the golden layer from being rebuilt; warnings only show in
the UI and in `gold.data_quality_report`. Shares are fractions (0.95 = 95 %).
"""

# --- Blocking -----------------------------------------------------------------------------
# Keys (lineage `_location, _record_ref`, shop ids, app messageIds, person `(source, source_key)`)
# must be present and unique without exception: they have no threshold.
# Machine-written fields (timestamps, integer keys) must parse. The raw loader already
# quarantines rows it cannot read, so anything below this share means the format changed
# under us; a stray value is left for the standardiser to null.
PARSEABLE_MIN_SHARE = 0.99
# Rows a delivered file may lose at load (blocking check `rows_lost_within_threshold` on each file
# asset): a file of a contract family rejected whole (renamed column, broken gzip, binary) fails
# when it held any record; a file read row by row fails when it loses at least
# FILE_LOSS_MIN_ROWS rows and more than FILE_LOSS_MAX_SHARE of its rows. (Small files of a few
# rows with one bad row are common and only reported.) A failing file stays failing until a
# corrected version is delivered under the same name.
FILE_LOSS_MAX_SHARE = 0.05
FILE_LOSS_MIN_ROWS = 10

# --- Warnings: rates the business tolerates but must see -----------------------------------
# Share of records with an email whose email is syntactically valid.
EMAIL_VALID_MIN_SHARE = 0.90
# Share of records with a phone number whose number parses for its country.
PHONE_VALID_MIN_SHARE = 0.85
# Share of records with a usable way to reach the person (valid email or valid phone).
CONTACT_CHANNEL_MIN_SHARE = 0.70
# Share of records with a birth date whose date is parseable and plausible.
BIRTH_DATE_VALID_MIN_SHARE = 0.95
# Share of delivered values in a documented code list (gender, consent flags, channels).
CODE_LIST_MIN_SHARE = 0.98
# Largest tolerated share of records that share a key (card, receipt line, contact id) with
# another record of the same source: a corrected file repeats the rows it corrects.
MAX_KEY_DUPLICATE_SHARE = 0.05
KEY_DUPLICATE_MOSTLY = 1.0 - MAX_KEY_DUPLICATE_SHARE
# The same for an email or phone number within one source. People hold several loyalty
# cards and families share an address, so this is higher (the sample data has about 15 %).
MAX_CONTACT_DUPLICATE_SHARE = 0.25
CONTACT_DUPLICATE_MOSTLY = 1.0 - MAX_CONTACT_DUPLICATE_SHARE

# --- Report -------------------------------------------------------------------------------
# A record not updated for longer than this counts as stale.
STALE_AFTER_DAYS = 365
# How many failing values a check shows as examples.
EXAMPLE_COUNT = 5
