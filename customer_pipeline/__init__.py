"""Customer data pipeline: raw sources to a deduplicated, always-fresh golden customer table."""

import warnings

# Great Expectations probes for pyspark at import; with the `spark` extra installed, pyspark 4 then warns on
# every run that it does not fully support pandas 3. Nothing of ours runs pandas through pyspark on that path
# (the Spark engine hands Parquet files to Spark), so this one third-party message is not shown.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
