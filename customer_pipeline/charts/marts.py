"""Customer-360 pictures: the RFM grid, segment sizes over runs, the strongest basket rules, churn risk."""

import duckdb
import numpy as np
import pandas as pd

from customer_pipeline.charts.png import BAD, GOOD, NEUTRAL, WARN, data_uri, figure, message
from customer_pipeline.warehouse import table_exists

# best to worst, as docs/marts.md lists them: the stacking order and colours of the segment charts
SEGMENTS = ("Champions", "Loyal", "Potential loyalist", "New", "Promising", "Needs attention", "About to sleep",
            "At risk", "Cannot lose them", "Hibernating", "Lost")
SEGMENT_COLOURS = ("#1b5e20", "#43a047", "#9ccc65", "#26c6da", "#0288d1", "#fdd835", "#ffb300", "#f57c00",
                   "#d84315", "#8d6e63", "#616161")
CHURN_BANDS = {"active": GOOD, "cooling": "#fdd835", "at risk": WARN, "lapsed": BAD}
TOP_RULES = 10


def _grid(ax, values: np.ndarray, labels: np.ndarray, title: str, fmt: str, cmap: str) -> None:
    image = ax.imshow(values, cmap=cmap, origin="lower", aspect="auto")
    top = np.nanmax(values) if np.isfinite(values).any() else 0
    for (r, f), v in np.ndenumerate(values):
        dark = top and v > top * 0.6
        ax.text(f, r, f"{fmt.format(v)}\n{labels[r, f]}", ha="center", va="center", fontsize=6.5,
                color="white" if dark else "black")
    ax.set_xticks(range(5), [str(i) for i in range(1, 6)])
    ax.set_yticks(range(5), [str(i) for i in range(1, 6)])
    ax.set_xlabel("FM score (frequency and monetary, 5 = best)", fontsize=8)
    ax.set_ylabel("R score (recency, 5 = most recent)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def rfm_grid(rfm: pd.DataFrame) -> str:
    """Two 5 x 5 heat maps of R score x FM score, customers and revenue (EUR) in the window, each cell named by
    its segment. Columns: r_score, fm_score, segment, monetary_eur, in_window."""
    fig, axes = figure(11, 4.6, 1, 2)
    bought = rfm[rfm["in_window"].astype(bool)] if len(rfm) else rfm
    if bought.empty:
        for ax in axes:
            message(ax, "no customer bought in the RFM window")
        return data_uri(fig)
    customers, revenue = np.zeros((5, 5)), np.zeros((5, 5))
    names = np.full((5, 5), "", dtype=object)
    for (r, f), cell in bought.groupby(["r_score", "fm_score"]):
        customers[int(r) - 1, int(f) - 1] = len(cell)
        revenue[int(r) - 1, int(f) - 1] = float(cell["monetary_eur"].astype("float64").sum())
        names[int(r) - 1, int(f) - 1] = cell["segment"].mode().iloc[0]
    _grid(axes[0], customers, names, f"Customers ({len(bought):,} bought in the window)", "{:,.0f}", "Blues")
    _grid(axes[1], revenue, names, f"Revenue EUR ({revenue.sum():,.0f} in the window)", "{:,.0f}", "Greens")
    outside = len(rfm) - len(bought)
    fig.suptitle("RFM grid" + (f" ({outside:,} customers without a purchase in the window not shown)" if outside
                               else ""), fontsize=10)
    return data_uri(fig)


def segment_sizes_over_runs(history: pd.DataFrame) -> str:
    """Stacked bars: customers per RFM segment at each run. Columns: measured_at, segment, customers."""
    fig, [ax] = figure(9, 4.2)
    if history.empty:
        message(ax, "no segment history yet")
        return data_uri(fig)
    table = history.pivot_table(index="measured_at", columns="segment", values="customers", aggfunc="sum").fillna(0)
    order = [s for s in SEGMENTS if s in table.columns] + sorted(set(table.columns) - set(SEGMENTS))
    colours = dict(zip(SEGMENTS, SEGMENT_COLOURS))
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for segment in order:
        values = table[segment].to_numpy()
        ax.bar(x, values, bottom=bottom, color=colours.get(segment, NEUTRAL), label=segment, width=0.8)
        bottom += values
    ax.set_xticks(x, [pd.Timestamp(t).strftime("%m-%d %H:%M") for t in table.index], rotation=45, ha="right",
                  fontsize=7)
    ax.set_ylabel("customers")
    ax.set_title(f"RFM segment sizes over the last {len(table)} run(s)", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False, reverse=True)
    return data_uri(fig)


def top_rules(rules: pd.DataFrame, n: int = TOP_RULES) -> str:
    """Horizontal bars: lift of the strongest rules, labelled with confidence and baskets.
    Columns: antecedent_name, consequent_name, lift, confidence, baskets_with_both (strongest first)."""
    top = rules.head(n)
    fig, [ax] = figure(9, 0.42 * max(len(top), 3) + 1.2)
    if top.empty:
        message(ax, "no association rule passes the thresholds")
        return data_uri(fig)
    labels = [f"{a} → {c}" for a, c in zip(top["antecedent_name"], top["consequent_name"])]
    y = np.arange(len(top))[::-1]
    bars = ax.barh(y, top["lift"].astype("float64"), color="#0288d1")
    ax.bar_label(bars, labels=[f"lift {lift:.1f} · conf {conf:.0%} · {int(b):,} baskets" for lift, conf, b in
                               zip(top["lift"], top["confidence"], top["baskets_with_both"])], fontsize=7, padding=3)
    ax.axvline(1, color=NEUTRAL, ls=":", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, float(top["lift"].max()) * 1.45)
    ax.set_xlabel("lift (1 = bought together no more often than by chance)")
    ax.set_title(f"Top {len(top)} association rules: bought the first, also bought the second", fontsize=10)
    return data_uri(fig)


def churn_risk(churn: pd.DataFrame) -> str:
    """Customers per churn band, and the distribution of P(still active) coloured by band.
    Columns: churn_band, p_alive."""
    fig, axes = figure(10, 3.8, 1, 2)
    if churn.empty:
        for ax in axes:
            message(ax, "no customer scored for churn yet")
        return data_uri(fig)
    present = set(churn["churn_band"].dropna().unique())  # (not each row's: iterating Arrow text is slow)
    bands = [b for b in CHURN_BANDS if b in present] + sorted(present - set(CHURN_BANDS))
    counts = churn["churn_band"].value_counts()
    colours = [CHURN_BANDS.get(b, NEUTRAL) for b in bands]
    bars = axes[0].bar(bands, [int(counts.get(b, 0)) for b in bands], color=colours)
    axes[0].bar_label(bars, labels=[f"{int(counts.get(b, 0)):,} ({counts.get(b, 0) / len(churn):.0%})" for b in bands],
                      fontsize=7, padding=1)
    axes[0].set_ylabel("customers")
    axes[0].set_title("Customers per churn-risk band", fontsize=9)
    bins = np.linspace(0, 1, 21)
    parts = [churn.loc[churn["churn_band"] == b, "p_alive"].dropna().astype("float64") for b in bands]
    axes[1].hist(parts, bins=bins, stacked=True, color=colours, label=bands)
    axes[1].set_xlabel("P(still active), BG/NBD")
    axes[1].set_ylabel("customers")
    axes[1].set_title("Probability of being still active", fontsize=9)
    axes[1].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(f"Churn risk of {len(churn):,} customers", fontsize=10)
    return data_uri(fig)


# --- from the warehouse ------------------------------------------------------------------------


def rfm_grid_from_warehouse(con: duckdb.DuckDBPyConnection) -> str:
    return rfm_grid(con.execute(
        "SELECT r_score, fm_score, segment, monetary_eur, in_window FROM gold.customer_rfm").df())


def top_rules_from_warehouse(con: duckdb.DuckDBPyConnection, n: int = TOP_RULES) -> str:
    return top_rules(con.execute("""
        SELECT antecedent_name, consequent_name, lift, confidence, baskets_with_both FROM gold.market_basket
        ORDER BY lift DESC, confidence DESC, antecedent_sku, consequent_sku LIMIT ?""", [n]).df())


def churn_risk_from_warehouse(con: duckdb.DuckDBPyConnection) -> str | None:
    """None while gold.customer_churn does not exist (it is built by its own asset)."""
    if not table_exists(con, "gold.customer_churn"):
        return None
    return churn_risk(con.execute("SELECT churn_band, p_alive FROM gold.customer_churn").df())
