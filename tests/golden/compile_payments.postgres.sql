/* Payments without test charges, with a flag for large amounts. */
SELECT
  txn_id,
  customer_id,
  card_id,
  merchant_id,
  amount,
  country,
  status,
  amount >= 500 AS is_high,
  ts,
  ingested_at
FROM src.transactions
WHERE
  amount IS NULL OR amount >= 0
