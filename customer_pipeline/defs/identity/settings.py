"""Identity-stage settings: thresholds (chosen on data, see docs/identity.md), model and chart locations."""

from pathlib import Path

from customer_pipeline.identity.linking import (
    DEFAULT_ACCEPT_WEIGHT,
    DEFAULT_NAME_ONLY_ACCEPT_WEIGHT,
    DEFAULT_REVIEW_LOW_WEIGHT,
)
from customer_pipeline.settings import Settings, env


def accept_weight() -> float:
    return float(env("CUSTOMER_PIPELINE_ACCEPT_WEIGHT", str(DEFAULT_ACCEPT_WEIGHT)))


def review_low_weight() -> float:
    return float(env("CUSTOMER_PIPELINE_REVIEW_LOW_WEIGHT", str(DEFAULT_REVIEW_LOW_WEIGHT)))


def name_only_accept_weight() -> float:
    return float(env("CUSTOMER_PIPELINE_NAME_ONLY_ACCEPT_WEIGHT", str(DEFAULT_NAME_ONLY_ACCEPT_WEIGHT)))


def pinned_model_path() -> Path | None:
    """A model file the deployment pins instead of training its own (`CUSTOMER_PIPELINE_MODEL_PATH`; unset: none)."""
    value = env("CUSTOMER_PIPELINE_MODEL_PATH", "")
    return Path(value) if value else None


def charts_dir() -> Path:
    """Where the charts go: beside the warehouse they describe (`<warehouse>.artifacts/identity`; they show
    that warehouse's records, so two warehouses of one checkout never share them, and erasure knows where
    they are), or under `CUSTOMER_PIPELINE_ARTIFACTS_DIR`."""
    explicit = env("CUSTOMER_PIPELINE_ARTIFACTS_DIR")
    if explicit:
        return Path(explicit) / "identity"
    warehouse = Settings.from_env().warehouse_path
    return warehouse.with_name(warehouse.stem + ".artifacts") / "identity"
