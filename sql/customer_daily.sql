-- Daily spend per customer, stamped at the end of the day (when it is known).
SELECT
    customer_id,
    date_trunc('day', ts) + INTERVAL 1 DAY AS day_end,
    count(*) AS payments,
    sum(amount) AS spend
FROM {{ ref('payments') }}
GROUP BY 1, 2
