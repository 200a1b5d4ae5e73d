"""Pictures in the UI: every chart is a bounded PNG data URI on small real data, the UI's own markdown component
keeps it as an image, and a small run puts the pictures (and column schemas, owners, code references) on the
asset pages, read back through the webserver's GraphQL API."""

import base64
import datetime as dt
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import dagster_webserver
from customer_pipeline import freshness
from customer_pipeline.charts import freshness as freshness_chart
from customer_pipeline.charts import identity, marts, png
from customer_pipeline.charts import quality as quality_chart
from customer_pipeline.defs.conventions import OWNER, picture
from customer_pipeline.marts import history

UI_CHUNKS = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
RENDERER = Path(__file__).parent / "ui_markdown.js"
IMAGE_MD = re.compile(r"^!\[[^\]]*\]\((data:image/png;base64,[A-Za-z0-9+/=]+)\)")
T0 = dt.datetime(2026, 11, 20, 6, 0)


def assert_png(uri: str) -> Image.Image:
    assert uri.startswith(png.PREFIX) and len(uri) <= png.MAX_URI_CHARS, len(uri)
    data = png.decode(uri)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.verify()
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.width >= 300 and image.height >= 150
    return image


def ui_images(markdown: str) -> list:
    """The <img> sources the installed Dagster UI's markdown component renders from `markdown` (Node.js)."""
    result = subprocess.run(["node", str(RENDERER), str(UI_CHUNKS)], input=markdown, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)["imgs"]


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as c:
        for schema in ("gold", "meta"):
            c.execute(f"CREATE SCHEMA {schema}")
        yield c


def _rfm(con) -> None:
    rng = np.random.default_rng(3)
    n = 60
    r, fm = rng.integers(1, 6, n), rng.integers(1, 6, n)
    df = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "as_of_date": dt.date(2026, 11, 20),
                       "r_score": r, "fm_score": fm, "in_window": rng.random(n) > 0.1,
                       "monetary_eur": rng.gamma(2, 40, n).round(2),
                       "segment": np.where(r >= 4, np.where(fm >= 4, "Champions", "Potential loyalist"),
                                           np.where(fm >= 4, "Cannot lose them", "Lost"))})
    con.execute("CREATE TABLE gold.customer_rfm AS SELECT * FROM df")


def test_identity_pictures(con):
    weights = [2.1, 2.4, 3.3, 4.9, 5.0, 5.5, 7.2, 12.0, 30.5, float("inf")]   # inf: a deterministic link
    assert_png(identity.match_weights(weights, accept=5.0, review_low=2.0))
    assert_png(identity.match_weights([], accept=5.0, review_low=2.0))
    assert_png(identity.cluster_sizes([1, 1, 1, 1, 2, 2, 3, 7]))
    assert_png(identity.cluster_sizes([]))


def test_freshness_picture_from_the_history(con):
    sla = freshness.Sla(warn=dt.timedelta(hours=2), fail=dt.timedelta(hours=3))
    for hours in range(0, 48, 6):   # the shop delivering, then falling behind
        now = T0 + dt.timedelta(hours=hours)
        loaded = now - dt.timedelta(minutes=20 if hours < 30 else 60 * (hours - 28))
        freshness.write(con, [freshness.SourceFreshness("shop", loaded, loaded, sla, now),
                              freshness.SourceFreshness("app", None, None, sla, now)])
    assert_png(freshness_chart.from_warehouse(con))
    assert_png(freshness_chart.from_warehouse(duckdb.connect()))      # no history yet: a picture that says so


def test_quality_picture_from_the_report_history(con):
    rows = [(f"run{i}", T0 + dt.timedelta(days=i), source, metric, field, value)
            for i in range(3) for source in ("pos", "shop", "all")
            for metric, field, value in (("validity", "email", 0.9 + i / 50), ("validity", "phone", 0.8),
                                         ("contactable", None, 0.95), ("duplicate_rate", "email_corrected", 0.1),
                                         ("quarantine_rate", None, 0.02 * i))]
    report = pd.DataFrame(rows, columns=["run_id", "measured_at", "source", "metric", "field", "value"])
    con.execute("CREATE TABLE gold.data_quality_report AS SELECT *, 1 AS numerator, 1 AS denominator FROM report")
    image = assert_png(quality_chart.from_warehouse(con))
    assert image.width > image.height
    assert_png(quality_chart.trend(report.iloc[0:0]))


def test_marts_pictures(con):
    _rfm(con)
    assert_png(marts.rfm_grid_from_warehouse(con))
    for day in range(3):
        history.record_segments(con, T0 + dt.timedelta(days=day))
    segments = history.segment_history(con)
    assert segments["measured_at"].nunique() == 3 and set(segments["segment"]) <= set(marts.SEGMENTS)
    assert_png(marts.segment_sizes_over_runs(segments))
    rules = pd.DataFrame({"antecedent_sku": ["A", "B", "C"], "consequent_sku": ["B", "A", "D"],
                          "antecedent_name": ["Dish Soap", "Sponges", "Potting Soil"],
                          "consequent_name": ["Sponges", "Dish Soap", "Flower Seeds"],
                          "baskets_with_both": [35, 35, 49], "confidence": [0.49, 0.8, 0.71],
                          "lift": [14.5, 14.5, 11.5]})
    con.execute("CREATE TABLE gold.market_basket AS SELECT * FROM rules")
    assert_png(marts.top_rules_from_warehouse(con))
    assert_png(marts.top_rules(rules.iloc[0:0]))
    assert marts.churn_risk_from_warehouse(con) is None              # until gold.customer_churn exists
    churn = pd.DataFrame({"customer_id": [f"C{i}" for i in range(40)],
                          "churn_band": ["active", "cooling", "at risk", "lapsed"] * 10,
                          "p_alive": np.linspace(0.02, 0.99, 40)})
    con.execute("CREATE TABLE gold.customer_churn AS SELECT * FROM churn")
    assert_png(marts.churn_risk_from_warehouse(con))
    assert_png(marts.rfm_grid(pd.DataFrame(columns=["r_score", "fm_score", "segment", "monetary_eur", "in_window"])))


def test_segment_history_keeps_a_bounded_number_of_runs(con):
    _rfm(con)
    for run in range(history.KEEP_RUNS + 3):
        kept = history.record_segments(con, T0 + dt.timedelta(hours=run))
    assert kept == history.KEEP_RUNS
    oldest = con.execute(f"SELECT min(measured_at) FROM {history.SEGMENT_HISTORY}").fetchall()[0][0]
    assert oldest == T0 + dt.timedelta(hours=3)
    assert len(history.segment_history(con, runs=5)["measured_at"].unique()) == 5


def test_a_picture_too_large_is_drawn_at_a_lower_resolution_or_refused():
    fig, [ax] = png.figure(8, 4)
    ax.imshow(np.random.default_rng(0).random((400, 800, 3)))     # noise: the worst case for PNG
    uri = png.data_uri(fig)
    assert_png(uri)
    assert Image.open(io.BytesIO(png.decode(uri))).width < 800    # it did not fit at full resolution
    with pytest.raises(ValueError, match="does not fit"):
        png.data_uri(fig, max_chars=2000)


def test_the_ui_markdown_component_shows_the_picture_and_drops_unsafe_images():
    uri = identity.cluster_sizes([1, 1, 2, 3])
    md = picture(uri, "Cluster sizes").md_str
    assert IMAGE_MD.match(md)
    # what the installed dagster-webserver bundle itself makes of it: the data URI stays an <img> source,
    # a javascript: or file:// image loses its source, raw HTML is no image
    assert ui_images(md + "\n\n![x](javascript:alert(1))\n\n![y](file:///tmp/chart.png)\n\n<img src=\"" + uri + "\">") \
        == [uri, None, None]


# --- a small run, read back through the UI's GraphQL API ------------------------------------------

CHARTS = {
    "identity/links": {"match_weights_chart"},
    "gold/customer_xref": {"cluster_sizes_chart"},
    "gold/source_freshness": {"lag_chart"},
    "gold/data_quality_report": {"trend_chart"},
    "gold/customer_rfm": {"rfm_grid_chart", "segment_sizes_chart"},
    "gold/market_basket": {"top_rules_chart"},
    "gold/customer_churn": {"churn_risk_chart"},
}
QUERY = """
{
  assetNodes {
    assetKey { path }
    kinds
    owners { __typename ... on TeamAssetOwner { team } }
    automationCondition { label }
    metadataEntries { label ... on CodeReferencesMetadataEntry {
      codeReferences { __typename ... on LocalFileCodeReference { filePath lineNumber } } } }
    assetMaterializations(limit: 1) {
      metadataEntries { label __typename
        ... on MarkdownMetadataEntry { mdStr }
        ... on TableSchemaMetadataEntry { schema { columns { name type } } } }
    }
  }
}
"""


@pytest.mark.slow
def test_a_small_run_shows_pictures_and_column_schemas_on_the_asset_pages(tmp_path, monkeypatch):
    from customer_pipeline.cli import main
    from customer_pipeline.definitions import defs
    from customer_pipeline_tests.test_ui_graphql import _graphql, _webserver

    landing, home = tmp_path / "landing", tmp_path / "dagster_home"
    assert main(["sample", "--persons", "150", "--seed", "5", "--out", str(landing), "--as-of", "2026-11-20"]) == 0
    for name, value in {"CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "SHOP_DB_URL": "",
                        "CUSTOMER_PIPELINE_WAREHOUSE": str(tmp_path / "w.duckdb"), "CUSTOMER_PIPELINE_PG_URL": "",
                        "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    with _webserver(tmp_path, "") as base:       # the same DAGSTER_HOME, warehouse and landing folder
        with dg.DagsterInstance.get() as instance:
            result = defs().resolve_job_def("materialize_all").execute_in_process(instance=instance,
                                                                                 raise_on_error=False)
        assert result.success
        nodes = {"/".join(n["assetKey"]["path"]): n for n in _graphql(base, QUERY)["assetNodes"]}

    def latest(key: str) -> dict:
        [materialization] = nodes[key]["assetMaterializations"]
        return {e["label"]: e for e in materialization["metadataEntries"]}

    for key, charts in CHARTS.items():
        entries = latest(key)
        for name in charts:
            assert entries[name]["__typename"] == "MarkdownMetadataEntry", (key, name)
            assert_png(IMAGE_MD.match(entries[name]["mdStr"]).group(1))
    rfm_grid = latest("gold/customer_rfm")["rfm_grid_chart"]["mdStr"]
    assert ui_images(rfm_grid) == [IMAGE_MD.match(rfm_grid).group(1)]

    for key, node in nodes.items():
        assert OWNER in {f"team:{o['team']}" for o in node["owners"] if o.get("team")}, key
        [refs] = [e for e in node["metadataEntries"] if e["label"] == "dagster/code_references"]
        assert all(Path(r["filePath"]).is_file() for r in refs["codeReferences"]), key
        assert key.startswith("raw/") or node["automationCondition"]["label"], key
        if "duckdb" in node["kinds"]:      # a warehouse table: its columns and types on the page
            schema = latest(key)["dagster/column_schema"]["schema"]
            assert schema["columns"] and all(c["type"] for c in schema["columns"]), key


def test_charts_modules_import_no_dagster():
    code = "import sys, customer_pipeline.charts.marts, customer_pipeline.charts.identity, " \
           "customer_pipeline.charts.freshness, customer_pipeline.charts.quality; print('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
