-- gold.customer_rfm: recency, frequency and monetary value per golden customer, quintile scores and a segment.
--
-- Input: gold.customer_purchases. Parameters: $window_days, $as_of (a date, or NULL = the newest purchase
-- date in the data, so the figures do not depend on today).
--
-- Every customer with a sale up to the reference date has a row. The window is the $window_days days
-- ending on the reference date. recency_days = reference date - last sale date; frequency = distinct sale
-- occasions (receipts, orders) in the window; monetary = net EUR (sales less returns) in the window.
-- Scores 1-5 are quintiles (NTILE(5)) among the customers who bought in the window, higher = better; equal
-- values share a score (the lowest their rank reaches), so a score never depends on the customer_id.
-- Customers with no sale in the window score 1-1-1. The segment comes from the grid below (R x FM, with
-- FM = (F + M) / 2 rounded half up), documented in docs/marts.md.
WITH reference AS (
    SELECT coalesce(CAST($as_of AS DATE), (SELECT max(purchase_date) FROM gold.customer_purchases)) AS as_of_date,
        CAST($window_days AS INTEGER) AS window_days
),

lines AS (
    SELECT p.customer_id, p.occasion_id, p.line_type, p.purchase_date, p.amount_eur,
        p.purchase_date > r.as_of_date - r.window_days AS in_window
    FROM gold.customer_purchases AS p, reference AS r
    WHERE p.customer_id IS NOT NULL AND p.purchase_date <= r.as_of_date
),

per_customer AS (
    SELECT
        customer_id,
        min(purchase_date) FILTER (WHERE line_type = 'sale') AS first_purchase_date,
        max(purchase_date) FILTER (WHERE line_type = 'sale') AS last_purchase_date,
        count(DISTINCT occasion_id) FILTER (WHERE line_type = 'sale' AND in_window) AS frequency,
        CAST(coalesce(sum(amount_eur) FILTER (WHERE in_window), 0) AS DECIMAL(14, 2)) AS monetary_eur
    FROM lines
    GROUP BY customer_id
    HAVING count(*) FILTER (WHERE line_type = 'sale') > 0
),

measured AS (
    SELECT c.*, r.as_of_date - c.last_purchase_date AS recency_days, c.frequency > 0 AS in_window,
        r.as_of_date, r.window_days
    FROM per_customer AS c, reference AS r
),

tiles AS (
    SELECT customer_id,
        ntile(5) OVER (ORDER BY recency_days DESC) AS r_tile,
        ntile(5) OVER (ORDER BY frequency) AS f_tile,
        ntile(5) OVER (ORDER BY monetary_eur) AS m_tile
    FROM measured
    WHERE in_window
),

scores AS (
    SELECT customer_id,
        min(r_tile) OVER (PARTITION BY recency_days) AS r_score,
        min(f_tile) OVER (PARTITION BY frequency) AS f_score,
        min(m_tile) OVER (PARTITION BY monetary_eur) AS m_score
    FROM tiles JOIN measured USING (customer_id)
),

-- the RFM grid: R score x FM score -> segment (docs/marts.md)
grid(r_score, fm_from, fm_to, segment) AS (
    VALUES
        (5, 1, 1, 'New'), (5, 2, 3, 'Potential loyalist'), (5, 4, 5, 'Champions'),
        (4, 1, 1, 'Promising'), (4, 2, 3, 'Potential loyalist'), (4, 4, 5, 'Loyal'),
        (3, 1, 2, 'About to sleep'), (3, 3, 3, 'Needs attention'), (3, 4, 5, 'Loyal'),
        (2, 1, 2, 'Hibernating'), (2, 3, 4, 'At risk'), (2, 5, 5, 'Cannot lose them'),
        (1, 1, 2, 'Lost'), (1, 3, 4, 'At risk'), (1, 5, 5, 'Cannot lose them')
),

scored AS (
    SELECT m.*,
        CAST(coalesce(s.r_score, 1) AS INTEGER) AS r_score,
        CAST(coalesce(s.f_score, 1) AS INTEGER) AS f_score,
        CAST(coalesce(s.m_score, 1) AS INTEGER) AS m_score
    FROM measured AS m LEFT JOIN scores AS s USING (customer_id)
)

SELECT
    s.customer_id,
    s.as_of_date,
    s.window_days,
    s.first_purchase_date,
    s.last_purchase_date,
    CAST(s.recency_days AS INTEGER) AS recency_days,
    CAST(s.frequency AS INTEGER) AS frequency,
    s.monetary_eur,
    s.in_window,
    s.r_score,
    s.f_score,
    s.m_score,
    (s.f_score + s.m_score + 1) // 2 AS fm_score,
    s.r_score || '' || s.f_score || '' || s.m_score AS rfm_cell,
    g.segment
FROM scored AS s
LEFT JOIN grid AS g ON g.r_score = s.r_score AND (s.f_score + s.m_score + 1) // 2 BETWEEN g.fm_from AND g.fm_to
ORDER BY s.customer_id
