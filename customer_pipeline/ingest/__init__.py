"""Reading the four sources into the raw layer: parsing, lineage, quarantine and bookkeeping."""
