-- gold.customer_purchases: every POS receipt line and shop order line, tied to its golden customer.
--
-- Inputs: staging.pos_transactions (receipt lines, deduplicated), staging.shop_orders (orders, typed),
-- raw.shop_order_items (order lines; typed here), raw.shop_orders (updated_at dates a return),
-- raw.pos_transactions + raw.shop_order_items (product names), gold.customer_xref (who is who) and the
-- temporary table fx_rates (data/reference/fx_rates.csv: EUR per unit of a currency, valid from a date).
-- Parameters: $void_statuses (shop orders that never were a sale), $return_statuses (sold, then taken back).
--
-- A line's amount is in the receipt currency, net of its discount; returns are negative. A returned or
-- refunded shop order is a sale on placed_at and a return of every line on its updated_at. Anonymous POS
-- receipts stay, with customer_id NULL.
WITH products AS (
    -- one name and category per SKU: the pair most lines give it (ties: alphabetical)
    SELECT sku, product_name, category
    FROM (
        SELECT sku, product_name, category, count(*) AS lines
        FROM (
            SELECT sku, product_name, category FROM raw.pos_transactions
            UNION ALL
            SELECT sku, product_name, category FROM raw.shop_order_items
        )
        WHERE sku IS NOT NULL
        GROUP BY ALL
    )
    QUALIFY row_number() OVER (PARTITION BY sku ORDER BY lines DESC, product_name, category) = 1
),

pos_lines AS (
    SELECT
        'pos' AS channel,
        'pos:' || store_id || ':' || receipt_id AS occasion_id,
        line_no,
        CASE WHEN qty < 0 THEN 'return' ELSE 'sale' END AS line_type,
        source_key,
        store_id,
        timezone('UTC', sold_at) AS purchased_at,
        sku,
        qty,
        unit_price,
        coalesce(discount, 0) AS discount,
        currency,
        qty * unit_price - sign(qty) * coalesce(discount, 0) AS amount,
        CAST(NULL AS VARCHAR) AS order_status
    FROM staging.pos_transactions
),

order_items AS (
    SELECT
        try_cast(order_id AS BIGINT) AS order_id,
        try_cast(line_no AS INTEGER) AS line_no,
        sku,
        try_cast(qty AS INTEGER) AS qty,
        try_cast(unit_price AS DECIMAL(12, 2)) AS unit_price
    FROM raw.shop_order_items
),

orders AS (
    SELECT o.order_id, o.source_key, o.status, o.placed_at, o.currency,
        coalesce(try_cast(r.updated_at AS TIMESTAMP), o.placed_at) AS updated_at
    FROM staging.shop_orders AS o
    LEFT JOIN raw.shop_orders AS r ON try_cast(r.id AS BIGINT) = o.order_id
    WHERE NOT list_contains($void_statuses, coalesce(o.status, ''))
),

shop_lines AS (
    SELECT
        'shop' AS channel,
        'shop:' || o.order_id AS occasion_id,
        i.line_no,
        o.source_key,
        'web' AS store_id,
        o.placed_at,
        o.updated_at,
        i.sku,
        i.qty,
        i.unit_price,
        CAST(0 AS DECIMAL(12, 2)) AS discount,
        o.currency,
        i.qty * i.unit_price AS amount,
        o.status AS order_status
    FROM order_items AS i
    JOIN orders AS o USING (order_id)
),

shop_sales AS (
    SELECT channel, occasion_id, line_no, 'sale' AS line_type, source_key, store_id, placed_at AS purchased_at,
        sku, qty, unit_price, discount, currency, amount, order_status
    FROM shop_lines
),

shop_returns AS (
    SELECT channel, occasion_id, line_no, 'return' AS line_type, source_key, store_id, updated_at AS purchased_at,
        sku, -qty AS qty, unit_price, discount, currency, -amount AS amount, order_status
    FROM shop_lines
    WHERE list_contains($return_statuses, order_status)
),

lines AS (
    SELECT * FROM pos_lines
    UNION ALL SELECT * FROM shop_sales
    UNION ALL SELECT * FROM shop_returns
),

day_rates AS (
    -- the rate of each currency on each day that has lines: the rate valid from the latest date not after it.
    -- The ASOF join runs on these few thousand days, not on every line (sorting millions of lines for it
    -- was most of the build)
    SELECT d.currency, d.purchase_date, f.eur_per_unit
    FROM (SELECT DISTINCT currency, CAST(purchased_at AS DATE) AS purchase_date FROM lines) AS d
    ASOF LEFT JOIN fx_rates AS f ON f.currency = d.currency AND d.purchase_date >= f.valid_from
)

SELECT
    l.occasion_id || ':' || l.line_no || CASE WHEN l.channel = 'shop' AND l.line_type = 'return' THEN ':return' ELSE '' END
        AS purchase_line_id,
    x.customer_id,
    l.channel,
    l.occasion_id,
    l.line_no,
    l.line_type,
    l.source_key,
    l.store_id,
    l.purchased_at,
    CAST(l.purchased_at AS DATE) AS purchase_date,
    l.sku,
    p.product_name,
    p.category,
    l.qty,
    l.unit_price,
    l.discount,
    l.currency,
    CAST(l.amount AS DECIMAL(14, 2)) AS amount,
    f.eur_per_unit AS fx_rate_eur,
    CAST(round(l.amount * f.eur_per_unit, 2) AS DECIMAL(14, 2)) AS amount_eur,
    l.order_status
FROM lines AS l
LEFT JOIN gold.customer_xref AS x ON x.source = l.channel AND x.source_key = l.source_key
LEFT JOIN products AS p USING (sku)
LEFT JOIN day_rates AS f ON f.currency = l.currency AND f.purchase_date = CAST(l.purchased_at AS DATE)
-- (stored in time order: customer_pipeline/marts/models.py, STORAGE_ORDER)
