-- Payments without test charges, with a flag for large amounts.
SELECT
    txn_id,
    customer_id,
    card_id,
    merchant_id,
    amount,
    country,
    status,
    amount >= {{ var('high_amount') }} AS is_high,
    ts,
    ingested_at
FROM {{ source('transactions') }}
WHERE amount IS NULL OR amount >= {{ var('min_amount') }}
