"""Identity pictures: where this run's scored pairs fall against the thresholds, and how big customers are."""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from customer_pipeline.charts.png import BAD, GOOD, NEUTRAL, WARN, data_uri, figure, message

LABELLED_BARS = 20


def match_weights(weights: Sequence[float], accept: float, review_low: float) -> str:
    """Histogram of the Splink match weights of the pairs scored this run, with the review band
    [review_low, accept) and the accept threshold; pairs under review_low are not kept (not shown)."""
    w = pd.Series(weights, dtype="float64")
    w = w[np.isfinite(w)]  # deterministic links carry an infinite weight: not scored, not drawn
    fig, [ax] = figure(8, 3.8)
    if w.empty:
        message(ax, f"no pair scored at or above match weight {review_low:g} this run")
        return data_uri(fig)
    low, high = math.floor(min(w.min(), review_low)), math.ceil(max(w.max(), accept)) + 1
    bins = np.arange(low, high + 0.5, 0.5)
    for part, colour, label in (
        (w[w < accept], WARN, f"review band [{review_low:g}, {accept:g}): {int((w < accept).sum()):,} pairs"),
        (w[w >= accept], GOOD, f"accepted (>= {accept:g}): {int((w >= accept).sum()):,} pairs"),
    ):
        ax.hist(part, bins=bins, color=colour, label=label)
    ax.axvspan(review_low, accept, color=WARN, alpha=0.12, lw=0)
    ax.axvline(accept, color=BAD, ls="--", lw=1.2)
    ax.axvline(review_low, color=NEUTRAL, ls=":", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("match weight (log2 Bayes factor)")
    ax.set_ylabel("pairs (log scale)")
    ax.set_title("Splink match weights of the scored pairs in identity.links")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return data_uri(fig)


def cluster_sizes(records_per_customer: Sequence[int]) -> str:
    """Customers by how many source records they hold (1 = seen once; a long tail = suspicious chains)."""
    sizes = pd.Series(records_per_customer, dtype="int64")
    fig, [ax] = figure(8, 3.6)
    if sizes.empty:
        message(ax, "no customer yet")
        return data_uri(fig)
    counts = sizes.value_counts().sort_index()
    bars = ax.bar(counts.index.astype(str), counts.to_numpy(), color=[GOOD if k > 1 else NEUTRAL for k in counts.index])
    if len(counts) <= LABELLED_BARS:
        ax.bar_label(bars, labels=[f"{v:,}" for v in counts.to_numpy()], fontsize=7, padding=1)
    else:  # a long tail: every fifth size named on the axis
        ax.set_xticks(range(0, len(counts), 5), counts.index.astype(str)[::5])
    ax.set_yscale("log")
    ax.set_xlabel("source records per customer")
    ax.set_ylabel("customers (log scale)")
    ax.set_title(f"Cluster sizes: {len(sizes):,} customers, {int((sizes > 1).sum()):,} with several records, "
                 f"largest {int(sizes.max())}")
    return data_uri(fig)
