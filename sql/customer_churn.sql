-- gold.customer_churn: per customer their rhythm and how overdue they are, the BG/NBD probability of still being
-- active, the purchases expected in the horizon, and a churn-risk band.
--
-- Inputs (temporary tables of customer_pipeline/marts/churn.py): churn_features (sql/customer_churn_features.sql)
-- and churn_fit (customer_id, p_alive, expected_purchases: the BG/NBD model's MAP fit on those features).
-- Parameters: $p_cooling, $p_at_risk, $p_lapsed (probability thresholds), $horizon_days.
--
-- The band is the worse of two readings: how overdue the customer is against their own rhythm (overdue_band) and
-- how likely the model thinks they are still active (a probability below $p_cooling is cooling, below $p_at_risk
-- at risk, below $p_lapsed lapsed). A one-time buyer's p_alive is 1 by the model's assumption (customers drop out
-- only right after a purchase), so their band is their overdue band against the population's typical gap.
WITH bands(band, severity) AS (
    VALUES ('active', 0), ('cooling', 1), ('at risk', 2), ('lapsed', 3)
),

scored AS (
    SELECT f.*, m.p_alive, m.expected_purchases,
        CASE
            WHEN m.p_alive < $p_lapsed THEN 'lapsed'
            WHEN m.p_alive < $p_at_risk THEN 'at risk'
            WHEN m.p_alive < $p_cooling THEN 'cooling'
            ELSE 'active'
        END AS probability_band
    FROM churn_features AS f
    JOIN churn_fit AS m USING (customer_id)
)

SELECT
    s.customer_id,
    s.as_of_date,
    s.first_purchase_date,
    s.last_purchase_date,
    s.purchase_days,
    s.frequency,
    s.recency,
    s.t_days,
    s.days_since_last,
    s.expected_gap_days,
    s.mean_gap_days,
    s.gap_source,
    s.overdue_ratio,
    s.overdue_band,
    CAST(s.p_alive AS DOUBLE) AS p_alive,
    s.probability_band,
    CAST(s.expected_purchases AS DOUBLE) AS expected_purchases,
    CAST($horizon_days AS INTEGER) AS horizon_days,
    CASE WHEN o.severity >= p.severity THEN s.overdue_band ELSE s.probability_band END AS churn_band
FROM scored AS s
JOIN bands AS o ON o.band = s.overdue_band
JOIN bands AS p ON p.band = s.probability_band
ORDER BY s.customer_id
