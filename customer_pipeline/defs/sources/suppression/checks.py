"""The file-family checks every landing source has, for the registers: nothing lost, little quarantined (blocking)."""

from customer_pipeline.defs.sources.checks import _file_check, _loss_check
from customer_pipeline.ingest.formats import SUPPRESSION

suppression_rows_accounted = _file_check(SUPPRESSION.name)
suppression_rows_lost = _loss_check(SUPPRESSION.name)
