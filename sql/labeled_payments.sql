-- The training spine of fraud_detector: one row per payment, at the payment's
-- time (when the model would have been called), with its later-known outcome.
SELECT
    p.txn_id,
    p.customer_id,
    p.card_id,
    p.merchant_id,
    p.country,
    p.amount,
    p.ts,
    l.is_fraud
FROM {{ ref('payments') }} AS p
JOIN {{ source('fraud_labels') }} AS l USING (txn_id)
