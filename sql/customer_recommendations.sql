-- gold.customer_recommendations: for each customer who bought in the RFM window, the products that go with
-- what they bought and that they have not bought yet.
--
-- Inputs: gold.customer_rfm (who bought in the window), gold.customer_purchases (what each customer bought,
-- ever: a product bought and returned counts as bought), gold.market_basket (the rules).
-- Parameter: $per_customer (how many products per customer).
--
-- A candidate is the consequent of a rule whose antecedent the customer bought; of several rules pointing to
-- one product, the strongest counts. Candidates rank by lift, then confidence, then SKU.
WITH active AS (
    SELECT customer_id FROM gold.customer_rfm WHERE in_window
),

bought AS (
    SELECT DISTINCT customer_id, sku, line_type = 'sale' AS sold
    FROM gold.customer_purchases
    WHERE customer_id IS NOT NULL AND sku IS NOT NULL
),

candidates AS (
    SELECT b.customer_id, r.consequent_sku AS sku, r.consequent_name AS product_name,
        r.antecedent_sku AS because_of_sku, r.antecedent_name AS because_of_name,
        r.lift, r.confidence, r.support
    FROM bought AS b
    JOIN active USING (customer_id)
    JOIN gold.market_basket AS r ON r.antecedent_sku = b.sku
    WHERE b.sold
      AND NOT EXISTS (SELECT 1 FROM bought AS o WHERE o.customer_id = b.customer_id AND o.sku = r.consequent_sku)
),

strongest AS (
    SELECT *
    FROM candidates
    QUALIFY row_number() OVER (PARTITION BY customer_id, sku
                               ORDER BY lift DESC, confidence DESC, because_of_sku) = 1
),

categories AS (
    SELECT sku, first(category ORDER BY category) AS category FROM gold.customer_purchases GROUP BY sku
)

SELECT
    s.customer_id,
    CAST(row_number() OVER (PARTITION BY s.customer_id ORDER BY s.lift DESC, s.confidence DESC, s.sku) AS INTEGER)
        AS rank,
    s.sku,
    s.product_name,
    c.category,
    s.because_of_sku,
    s.because_of_name,
    s.lift,
    s.confidence,
    s.support
FROM strongest AS s
LEFT JOIN categories AS c USING (sku)
QUALIFY rank <= $per_customer
ORDER BY s.customer_id, rank
