-- gold.marketing_audience: one row per golden customer and channel (email, phone = calls and SMS, post), with
-- the contact value, whether it may be used today and, when not, why (docs/marts.md, "Marketing audience").
--
-- Inputs: gold.golden_customers (the contact values), gold.customer_xref + staging.person_records (what every
-- source record of the customer says about consent), gold.households (the postal address: one mailing per
-- household), staging.suppression_entries (the preference registers in force), and two temporary tables the
-- builder makes (customer_pipeline/marts/audience.py): audience_household_keys (household address as match
-- keys) and audience_erased (customers matching the erasure register). Parameter: $today.
--
-- Any refusal wins, across all of a customer's records: one opt-out, one "N" to the consent question, one
-- do-not-call request is enough, whatever the other records say. Reasons, strongest first (`reason` is the
-- first that applies, `reasons` lists all): erased, opted out, on suppression register, do-not-call,
-- email bounced or complained, no consent, no valid value, household already mailed.
WITH facts AS (
    SELECT x.customer_id,
        coalesce(bool_or(p.marketing_consent), false) AS consent_given,
        coalesce(bool_or(NOT p.marketing_consent), false) AS consent_refused,
        -- a call-center opt-out, or an unsubscribe from the mailing provider: withdrawn from all marketing
        coalesce(bool_or(p.opted_out OR p.email_unsubscribed), false) AS opted_out,
        coalesce(bool_or(p.do_not_call), false) AS do_not_call
    FROM gold.customer_xref AS x
    JOIN staging.person_records AS p USING (record_id)
    GROUP BY x.customer_id
),

-- addresses the mailing provider reported as bouncing or complaining (hard suppression of that address)
bad_emails AS (
    SELECT DISTINCT coalesce(email_corrected, email) AS email
    FROM staging.person_records
    WHERE email_suppressed AND coalesce(email_corrected, email) IS NOT NULL
),

channels AS (
    SELECT customer_id, 'email' AS channel, email AS contact_value, email AS match_value,
        CAST(NULL AS VARCHAR) AS phone_type, CAST(NULL AS VARCHAR) AS household_id, CAST(NULL AS VARCHAR) AS country
    FROM gold.golden_customers
    UNION ALL
    SELECT customer_id, 'phone', phone, phone, phone_type, NULL, NULL
    FROM gold.golden_customers
    UNION ALL
    -- post goes to the household's address: a customer without a household has no usable street
    -- (docs/households.md), so no postal value
    SELECT g.customer_id, 'post',
        CASE WHEN h.household_id IS NOT NULL
             THEN concat_ws(', ', h.address, nullif(concat_ws(' ', h.postcode, h.city), ''), h.country) END,
        k.street_key || '|' || k.postcode_key, NULL, g.household_id, k.country
    FROM gold.golden_customers AS g
    LEFT JOIN gold.households AS h USING (household_id)
    LEFT JOIN audience_household_keys AS k USING (household_id)
),

registers AS (
    SELECT DISTINCT register, CASE kind WHEN 'postal' THEN 'post' ELSE kind END AS channel, match_value, country
    FROM staging.suppression_entries
    WHERE matchable
),

register_hits AS (
    SELECT c.customer_id, c.channel, string_agg(DISTINCT r.register, ', ' ORDER BY r.register) AS registers
    FROM channels AS c
    JOIN registers AS r
        ON r.channel = c.channel AND r.match_value = c.match_value
        -- an address matches in its own country (a register entry or household without country matches any)
        AND (c.channel <> 'post' OR r.country IS NULL OR c.country IS NULL OR r.country = c.country)
    GROUP BY ALL
),

flagged AS (
    SELECT c.customer_id, c.channel, c.contact_value, c.phone_type, c.household_id, h.registers,
        e.customer_id IS NOT NULL AS erased,
        coalesce(f.opted_out, false) AS opted_out,
        h.registers IS NOT NULL AS on_register,
        c.channel = 'phone' AND coalesce(f.do_not_call, false) AS do_not_call,
        c.channel = 'email' AND b.email IS NOT NULL AS bounced,
        NOT coalesce(f.consent_given, false) OR coalesce(f.consent_refused, false) AS no_consent,
        c.contact_value IS NULL AS no_value,
        g.data_quality_score, g.last_seen_at
    FROM channels AS c
    JOIN gold.golden_customers AS g USING (customer_id)
    LEFT JOIN facts AS f USING (customer_id)
    LEFT JOIN register_hits AS h USING (customer_id, channel)
    LEFT JOIN bad_emails AS b ON c.channel = 'email' AND b.email = c.contact_value
    LEFT JOIN audience_erased AS e USING (customer_id)
),

reasoned AS (
    SELECT *,
        list_filter([
            CASE WHEN erased THEN 'erased' END,
            CASE WHEN opted_out THEN 'opted out' END,
            CASE WHEN on_register THEN 'on suppression register' END,
            CASE WHEN do_not_call THEN 'do-not-call' END,
            CASE WHEN bounced THEN 'email bounced or complained' END,
            CASE WHEN no_consent THEN 'no consent' END,
            CASE WHEN no_value THEN 'no valid value' END
        ], lambda r: r IS NOT NULL) AS blockers
    FROM flagged
),

-- one mailing per household: of the members who may be mailed, the one with the fullest record, then the
-- most recently seen, then the smallest customer_id
mailing AS (
    SELECT customer_id,
        row_number() OVER (PARTITION BY household_id
                           ORDER BY data_quality_score DESC NULLS LAST, last_seen_at DESC NULLS LAST, customer_id) = 1
            AS household_mailing
    FROM reasoned
    WHERE channel = 'post' AND len(blockers) = 0 AND household_id IS NOT NULL
),

decided AS (
    SELECT r.*,
        CASE WHEN r.channel = 'post' THEN coalesce(m.household_mailing, false) END AS household_mailing,
        CASE WHEN r.channel = 'post' AND len(r.blockers) = 0 AND NOT coalesce(m.household_mailing, false)
             THEN list_append(r.blockers, 'household already mailed') ELSE r.blockers END AS all_blockers
    FROM reasoned AS r
    LEFT JOIN mailing AS m ON r.channel = 'post' AND m.customer_id = r.customer_id
)

SELECT customer_id, channel, contact_value, phone_type, household_id, household_mailing,
    len(all_blockers) = 0 AS may_contact,
    all_blockers[1] AS reason,
    nullif(array_to_string(all_blockers, '; '), '') AS reasons,
    registers AS suppression_registers,
    CAST($today AS DATE) AS evaluated_on
FROM decided
ORDER BY customer_id, CASE channel WHEN 'email' THEN 1 WHEN 'phone' THEN 2 ELSE 3 END
