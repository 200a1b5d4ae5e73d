"""Offline HTML views of the Splink model and its predictions, for a person reviewing the linkage."""

import re
from pathlib import Path

import pandas as pd

from customer_pipeline.identity import splink_model as sm

# The dashboards inline their JavaScript but still link Google Fonts; the pages show
# customer data, so they should not call out to anyone (the font falls back locally).
_EXTERNAL_LINK = re.compile(r'<link[^>]+href="https?://[^"]*"[^>]*>\s*')


def _strip_external_links(path: Path) -> None:
    path.write_text(_EXTERNAL_LINK.sub("", path.read_text(encoding="utf-8")), encoding="utf-8")


CHART_FILES = {
    "match_weights": "match_weights.html",
    "m_u_parameters": "m_u_parameters.html",
    "comparison_viewer": "comparison_viewer.html",
    "cluster_studio": "cluster_studio.html",
}


# The dashboards show examples: scoring every record again for them would double the identity
# stage on large data, so above this many records they are drawn from a sample.
CHART_MAX_RECORDS = 20_000


def sample_for_charts(records: pd.DataFrame, max_records: int = CHART_MAX_RECORDS) -> pd.DataFrame:
    """At most about `max_records` records, whole surnames at a time.

    Sampling records one by one would break most pairs apart (a pair needs both of its records);
    keeping every record of a sampled surname keeps the duplicates, namesakes and households that
    the dashboards are there to show. Deterministic: the same records give the same sample.
    """
    if len(records) <= max_records:
        return records
    surname = records.get("last_name_norm", pd.Series(index=records.index, dtype=object))
    key = surname.astype("string").fillna(records["record_id"].astype("string"))
    buckets = pd.util.hash_pandas_object(key, index=False).to_numpy() % 1000
    keep = buckets < max(1, int(1000 * max_records / len(records)))
    return records.loc[keep]


def write_charts(records: pd.DataFrame, model_path: str | Path | dict, out_dir: str | Path,
                 accept_weight: float, review_low_weight: float, sample_clusters: int = 20) -> dict[str, Path]:
    """Write the four HTML files with their JavaScript inlined (no CDN), return name -> path.

    Match weights and m/u parameters describe the model; the comparison viewer and the cluster
    studio show scored pairs and clusters of `records` (a sample of them above CHART_MAX_RECORDS).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in CHART_FILES.items()}
    prepared = sm.prepare(sample_for_charts(records))
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, model_path if isinstance(model_path, dict) else Path(model_path))
        # `to_html(inline=True)` bundles vega; `chart.save` would load it from a CDN.
        paths["match_weights"].write_text(linker.visualisations.match_weights_chart().to_html(inline=True), encoding="utf-8")
        paths["m_u_parameters"].write_text(linker.visualisations.m_u_parameters_chart().to_html(inline=True), encoding="utf-8")
        # Scored pairs down to the review band show what the reviewer will be asked about.
        predictions = linker.inference.predict(threshold_match_weight=review_low_weight, warning_mode="never")
        linker.visualisations.comparison_viewer_dashboard(
            predictions, str(paths["comparison_viewer"]), overwrite=True, num_example_rows=2
        )
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_weight=accept_weight
        )
        linker.visualisations.cluster_studio_dashboard(
            predictions, clusters, str(paths["cluster_studio"]),
            sampling_method="by_cluster_size", sample_size=sample_clusters, overwrite=True,
        )
    for name in ("comparison_viewer", "cluster_studio"):
        _strip_external_links(paths[name])
    return paths
