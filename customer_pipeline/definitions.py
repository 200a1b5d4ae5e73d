"""The Dagster code location: everything under `defs/`, organised by stage, with the project's conventions
(owners, automation conditions on the specs, code references: `defs/conventions.py`)."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.conventions import with_conventions


@dg.definitions
def defs() -> dg.Definitions:
    return with_conventions(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
