-- gold.market_basket: association rules "a basket holding A also holds B" between two SKUs.
--
-- Input: gold.customer_purchases (sale lines of every receipt and order, anonymous ones too: a basket needs
-- no identity). Parameters: $min_support_count, $min_confidence, $min_lift (customer_pipeline/marts/settings.py).
--
-- A basket is one sale occasion (a receipt or an order) and counts a SKU once, whatever the quantity.
-- support = baskets with A and B / all baskets; confidence = baskets with A and B / baskets with A;
-- lift = confidence / (baskets with B / all baskets): 1 is what independence gives, above 1 they go together.
-- Each pair gives two rules (A -> B and B -> A) with the same support and lift, different confidences.
WITH baskets AS (
    SELECT DISTINCT occasion_id, sku
    FROM gold.customer_purchases
    WHERE line_type = 'sale' AND sku IS NOT NULL
),

total AS (
    SELECT count(DISTINCT occasion_id) AS baskets FROM baskets
),

items AS (
    SELECT sku, count(*) AS baskets_with FROM baskets GROUP BY sku
),

pairs AS (
    SELECT a.sku AS antecedent_sku, b.sku AS consequent_sku, count(*) AS baskets_with_both
    FROM baskets AS a
    JOIN baskets AS b ON a.occasion_id = b.occasion_id AND a.sku <> b.sku
    GROUP BY ALL
    HAVING count(*) >= $min_support_count
),

products AS (
    SELECT sku, first(product_name ORDER BY product_name) AS product_name
    FROM gold.customer_purchases
    GROUP BY sku
),

rules AS (
    SELECT
        p.antecedent_sku,
        p.consequent_sku,
        p.baskets_with_both,
        a.baskets_with AS baskets_with_antecedent,
        c.baskets_with AS baskets_with_consequent,
        t.baskets AS baskets_total,
        p.baskets_with_both / t.baskets AS support,
        p.baskets_with_both / a.baskets_with AS confidence,
        (p.baskets_with_both / a.baskets_with) / (c.baskets_with / t.baskets) AS lift
    FROM pairs AS p
    JOIN items AS a ON a.sku = p.antecedent_sku
    JOIN items AS c ON c.sku = p.consequent_sku
    CROSS JOIN total AS t
)

SELECT
    r.antecedent_sku,
    pa.product_name AS antecedent_name,
    r.consequent_sku,
    pc.product_name AS consequent_name,
    CAST(r.baskets_with_both AS INTEGER) AS baskets_with_both,
    CAST(r.baskets_with_antecedent AS INTEGER) AS baskets_with_antecedent,
    CAST(r.baskets_with_consequent AS INTEGER) AS baskets_with_consequent,
    CAST(r.baskets_total AS INTEGER) AS baskets_total,
    CAST(r.support AS DOUBLE) AS support,
    CAST(r.confidence AS DOUBLE) AS confidence,
    CAST(r.lift AS DOUBLE) AS lift
FROM rules AS r
LEFT JOIN products AS pa ON pa.sku = r.antecedent_sku
LEFT JOIN products AS pc ON pc.sku = r.consequent_sku
WHERE r.confidence >= $min_confidence AND r.lift >= $min_lift
ORDER BY r.lift DESC, r.confidence DESC, r.antecedent_sku, r.consequent_sku
