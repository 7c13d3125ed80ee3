{{ config(materialized='table') }}
-- Chargebacks by merchant, stamped with the time they were reported.
SELECT
    merchant_id,
    reported_at AS ts,
    amount
FROM {{ source('chargebacks') }}
