"""Artefacts beside the warehouse that may show the person: the identity dashboards, redrawn without them."""

from pathlib import Path

from customer_pipeline.settings import env

# the comparison viewer and the cluster studio show scored records; the other two charts show the model only
RECORD_CHARTS = ("comparison_viewer.html", "cluster_studio.html")  # identity.charts.CHART_FILES


def artifacts_dir(warehouse_path: Path) -> Path:
    """`<warehouse>.artifacts/` (as the identity stage writes it), or CUSTOMER_PIPELINE_ARTIFACTS_DIR."""
    explicit = env("CUSTOMER_PIPELINE_ARTIFACTS_DIR")
    return Path(explicit) if explicit else warehouse_path.with_name(warehouse_path.stem + ".artifacts")


def remove_record_charts(warehouse_path: Path) -> list[str]:
    """Delete every artefact that shows records (the dashboards, wherever under the folder); returns them."""
    base = artifacts_dir(warehouse_path)
    deleted = []
    for name in RECORD_CHARTS:
        for path in sorted(base.rglob(name)) if base.is_dir() else []:
            path.unlink()
            deleted.append(str(path))
    return deleted


def redraw_charts(con, warehouse_path: Path) -> list[str]:
    """Draw the identity charts again on the records left, with the model in use (none: nothing drawn)."""
    from customer_pipeline.defs.identity import settings
    from customer_pipeline.identity import linking, model_store

    pinned = settings.pinned_model_path()
    version = model_store.pinned(pinned) if pinned else model_store.latest(con)
    if version is None:
        return []
    records = con.execute("SELECT * FROM staging.person_records").df()
    charts = linking.write_charts(records, version.model, artifacts_dir(warehouse_path) / "identity",
                                  settings.accept_weight(), settings.review_low_weight())
    return [str(p) for p in charts.values()]
