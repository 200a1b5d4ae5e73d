-- The features of gold.customer_churn: per customer the BG/NBD inputs (frequency, recency, T), their own rhythm
-- (the median gap between purchases) and how overdue they are, as of the observation end.
--
-- Input: gold.customer_purchases. Parameters: $as_of (a date, or NULL = the newest sale date in the data, so the
-- figures do not depend on today), $overdue_cooling, $overdue_at_risk, $overdue_lapsed (the band thresholds,
-- customer_pipeline/marts/churn.py).
--
-- A purchase occasion is a day on which the customer bought: several receipts or orders on one day count once
-- (purchases are counted in days), a return is none. frequency = occasions - 1 (repeat purchases), recency = days
-- from the first to the last occasion, t_days (BG/NBD's T) = days from the first occasion to $as_of, as BG/NBD
-- (and pymc-marketing's rfm_summary) define them. expected_gap_days is the median of the customer's own gaps between
-- occasions (one long break does not stretch it); a customer with one occasion has no gap of their own and takes
-- the median of all customers' expected gaps (gap_source 'population'). overdue_ratio = days since the last
-- occasion / expected gap: 1 = due today, 4 = four gaps late ("bought every week, nothing for a month").
WITH reference AS (
    SELECT coalesce(CAST($as_of AS DATE),
                    (SELECT max(purchase_date) FROM gold.customer_purchases WHERE line_type = 'sale')) AS as_of_date
),

occasions AS (
    SELECT DISTINCT p.customer_id, p.purchase_date
    FROM gold.customer_purchases AS p, reference AS r
    WHERE p.customer_id IS NOT NULL AND p.line_type = 'sale' AND p.purchase_date <= r.as_of_date
),

gaps AS (
    SELECT customer_id, purchase_date,
        purchase_date - lag(purchase_date) OVER (PARTITION BY customer_id ORDER BY purchase_date) AS gap_days
    FROM occasions
),

per_customer AS (
    SELECT
        customer_id,
        min(purchase_date) AS first_purchase_date,
        max(purchase_date) AS last_purchase_date,
        count(*) AS purchase_days,
        count(gap_days) AS gaps,
        CAST(median(gap_days) AS DOUBLE) AS own_gap_days,
        CAST(avg(gap_days) AS DOUBLE) AS mean_gap_days
    FROM gaps
    GROUP BY customer_id
),

population AS (
    SELECT coalesce(CAST(median(own_gap_days) AS DOUBLE), 1.0) AS population_gap_days FROM per_customer
),

measured AS (
    SELECT
        c.*,
        r.as_of_date,
        r.as_of_date - c.last_purchase_date AS days_since_last,
        coalesce(c.own_gap_days, p.population_gap_days) AS expected_gap_days,
        CASE WHEN c.gaps > 0 THEN 'own' ELSE 'population' END AS gap_source
    FROM per_customer AS c, reference AS r, population AS p
)

SELECT
    customer_id,
    as_of_date,
    first_purchase_date,
    last_purchase_date,
    CAST(purchase_days AS INTEGER) AS purchase_days,
    CAST(purchase_days - 1 AS INTEGER) AS frequency,
    CAST(last_purchase_date - first_purchase_date AS INTEGER) AS recency,
    CAST(as_of_date - first_purchase_date AS INTEGER) AS t_days,
    CAST(days_since_last AS INTEGER) AS days_since_last,
    expected_gap_days,
    mean_gap_days,
    gap_source,
    days_since_last / expected_gap_days AS overdue_ratio,
    CASE
        WHEN days_since_last / expected_gap_days >= $overdue_lapsed THEN 'lapsed'
        WHEN days_since_last / expected_gap_days >= $overdue_at_risk THEN 'at risk'
        WHEN days_since_last / expected_gap_days >= $overdue_cooling THEN 'cooling'
        ELSE 'active'
    END AS overdue_band
FROM measured
ORDER BY customer_id
