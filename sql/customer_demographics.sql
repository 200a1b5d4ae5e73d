-- gold.customer_demographics: one row per golden customer with the segmentation columns BI pivots on, every
-- one a small set of labels (never NULL: 'unknown' where the data has no value).
--
-- Inputs: gold.golden_customers, gold.households, and the temporary view demographics_rfm(customer_id,
-- segment) the builder makes from gold.customer_rfm (empty when the RFM mart is not built). Parameter: $today.
--
-- age_band: age on $today from the surviving birth date; first_seen_cohort: year and quarter of the
-- customer's earliest record; household_size_band: members of the customer's household ('no household' when
-- the customer has none, docs/households.md); rfm_segment: the RFM grid segment, 'no purchase' without one.
WITH base AS (
    SELECT g.customer_id, g.gender, g.birth_date, g.country, g.first_seen_at, g.household_id, h.members,
        g.sources,
        CASE WHEN g.birth_date IS NOT NULL AND g.birth_date <= CAST($today AS DATE)
             THEN date_diff('year', g.birth_date, CAST($today AS DATE))
                  - CASE WHEN strftime(CAST($today AS DATE), '%m-%d') < strftime(g.birth_date, '%m-%d')
                         THEN 1 ELSE 0 END END AS age
    FROM gold.golden_customers AS g
    LEFT JOIN gold.households AS h USING (household_id)
)

SELECT b.customer_id,
    b.age,
    CASE WHEN b.age IS NULL THEN 'unknown'
         WHEN b.age < 18 THEN 'under 18'
         WHEN b.age < 25 THEN '18-24'
         WHEN b.age < 35 THEN '25-34'
         WHEN b.age < 45 THEN '35-44'
         WHEN b.age < 55 THEN '45-54'
         WHEN b.age < 65 THEN '55-64'
         ELSE '65+' END AS age_band,
    CASE b.gender WHEN 'M' THEN 'male' WHEN 'F' THEN 'female' WHEN 'X' THEN 'diverse' ELSE 'unknown' END AS gender,
    coalesce(b.country, 'unknown') AS country,
    CASE WHEN b.first_seen_at IS NULL THEN 'unknown'
         ELSE strftime(b.first_seen_at, '%Y') || '-Q' || CAST(quarter(b.first_seen_at) AS VARCHAR) END
        AS first_seen_cohort,
    CAST(b.first_seen_at AS DATE) AS first_seen_date,
    b.household_id,
    b.members AS household_size,
    CASE WHEN b.members IS NULL THEN 'no household' WHEN b.members >= 4 THEN '4+'
         ELSE CAST(b.members AS VARCHAR) END AS household_size_band,
    coalesce(r.segment, 'no purchase') AS rfm_segment,
    b.sources,
    CAST($today AS DATE) AS evaluated_on
FROM base AS b
LEFT JOIN demographics_rfm AS r USING (customer_id)
ORDER BY b.customer_id
