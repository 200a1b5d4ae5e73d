"""Work-arounds for third-party behaviour, each with its reason."""

import contextlib
import sys


@contextlib.contextmanager
def pyspark_import_guard():
    """Import pyspark (directly, or through Great Expectations' pyspark probe) without it exiting the process.

    pyspark 4 (the `spark` extra) takes a process whose `__main__` has neither a spec nor a file for a doctest
    run and calls `sys.exit(0)` when Spark Connect's optional packages are missing
    (`pyspark/sql/connect/utils.py`). Dagster's run and step workers and `python -c` are such processes: the
    Great Expectations steps of every run under `dagster dev` ended in `SystemExit: 0`. While the import runs,
    `sys.ps1` (which pyspark reads as "an interactive session") is set; nothing else reads it then.
    """
    main = sys.modules.get("__main__")
    patch = (main is not None and getattr(main, "__spec__", None) is None and not hasattr(main, "__file__")
             and not hasattr(sys, "ps1"))
    if patch:
        sys.ps1 = ""
    try:
        yield
    finally:
        if patch:
            del sys.ps1
