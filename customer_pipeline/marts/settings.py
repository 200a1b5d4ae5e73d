"""Every threshold and window of the marts in one place; each can be set from the environment (docs/marts.md)."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from customer_pipeline.settings import env

REPORTING_CURRENCY = "EUR"

# RFM: the window frequency and monetary are counted over ends on the newest purchase date in the data
# (or RFM_AS_OF when set), so the demo works whatever today is.
RFM_WINDOW_DAYS = 365

# Association rules A -> B between two SKUs, over every sale basket (a receipt or an order).
# A pair seen in fewer baskets is noise, a rule below the confidence is rarely true for a single customer,
# and a lift below MIN_LIFT is what popularity alone would give.
MIN_SUPPORT_COUNT = 10  # baskets holding both
MIN_CONFIDENCE = 0.1  # share of the baskets holding A that hold B
MIN_LIFT = 1.5  # confidence / share of all baskets holding B
RECOMMENDATIONS_PER_CUSTOMER = 3

# Shop order statuses: a cancelled order was never a sale; a returned or refunded one was sold, then taken back.
SHOP_VOID_STATUSES = ("cancelled",)
SHOP_RETURN_STATUSES = ("returned", "refunded")


@dataclass(frozen=True)
class MartSettings:
    fx_rates_path: Path | None  # None: the packaged data/reference/fx_rates.csv
    rfm_window_days: int = RFM_WINDOW_DAYS
    rfm_as_of: dt.date | None = None
    min_support_count: int = MIN_SUPPORT_COUNT
    min_confidence: float = MIN_CONFIDENCE
    min_lift: float = MIN_LIFT
    recommendations_per_customer: int = RECOMMENDATIONS_PER_CUSTOMER

    @classmethod
    def from_env(cls) -> "MartSettings":
        as_of = env("CUSTOMER_PIPELINE_RFM_AS_OF")
        fx = env("CUSTOMER_PIPELINE_FX_RATES")
        return cls(
            fx_rates_path=Path(fx) if fx else None,
            rfm_window_days=int(env("CUSTOMER_PIPELINE_RFM_WINDOW_DAYS", str(RFM_WINDOW_DAYS))),
            rfm_as_of=dt.date.fromisoformat(as_of) if as_of else None,
            min_support_count=int(env("CUSTOMER_PIPELINE_BASKET_MIN_SUPPORT_COUNT", str(MIN_SUPPORT_COUNT))),
            min_confidence=float(env("CUSTOMER_PIPELINE_BASKET_MIN_CONFIDENCE", str(MIN_CONFIDENCE))),
            min_lift=float(env("CUSTOMER_PIPELINE_BASKET_MIN_LIFT", str(MIN_LIFT))),
            recommendations_per_customer=int(
                env("CUSTOMER_PIPELINE_RECOMMENDATIONS_PER_CUSTOMER", str(RECOMMENDATIONS_PER_CUSTOMER))),
        )
