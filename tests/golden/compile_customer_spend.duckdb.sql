-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)
WITH __s AS (
  SELECT
    *
  FROM __spine
), __m0 AS MATERIALIZED (
  SELECT
    __b.*,
    CASE WHEN "__a"."__ts" >= "__b"."__ts" - 2592000000000 THEN "__a"."__ts" END AS "__mts0"
  FROM __s AS __b
  ASOF LEFT JOIN (
    SELECT
      "customer_id",
      "__ts"
    FROM (
      SELECT
        "customer_id",
        EPOCH_US("ts") AS "__ts",
        EPOCH_US("ingested_at") AS "__created"
      FROM "payments"
      WHERE
        NOT "customer_id" IS NULL AND NOT "ts" IS NULL
    ) AS __rows
  ) AS __a
    ON "__b"."customer_id" = "__a"."customer_id" AND "__b"."__ts" >= "__a"."__ts"
), __p0 AS (
  SELECT
    "customer_id",
    "__ts",
    ARG_MAX_NULL("last_amount", "__ck") AS "last_amount",
    ARG_MAX_NULL("last_country", "__ck") AS "last_country",
    ARG_MAX_NULL("__amb", "__ck") AS "__amb"
  FROM (
    SELECT
      "customer_id",
      "__ts",
      "__ck",
      ANY_VALUE("last_amount") AS "last_amount",
      ANY_VALUE("last_country") AS "last_country",
      MIN("__h") <> MAX("__h") AS "__amb"
    FROM (
      SELECT
        "__r"."customer_id",
        "__r"."__ts",
        COALESCE("__created", -9223372036854775808) AS "__ck",
        "__r"."last_amount",
        "__r"."last_country",
        "__r"."__h"
      FROM (
        SELECT
          "customer_id",
          EPOCH_US("ts") AS "__ts",
          EPOCH_US("ingested_at") AS "__created",
          amount AS "last_amount",
          country AS "last_country",
          HASH(amount, country) AS "__h"
        FROM "payments"
        WHERE
          NOT "customer_id" IS NULL AND NOT "ts" IS NULL
      ) AS __r
      SEMI JOIN (
        SELECT DISTINCT
          "customer_id" AS "customer_id",
          "__mts0" AS "__ts"
        FROM __m0
        WHERE
          NOT "__mts0" IS NULL
      ) AS __q
        ON "__r"."customer_id" = "__q"."customer_id" AND "__r"."__ts" = "__q"."__ts"
    ) AS __c
    GROUP BY
      "customer_id",
      "__ts",
      "__ck"
  ) AS __g
  GROUP BY
    "customer_id",
    "__ts"
), __view1 AS (
  SELECT
    "customer_id",
    "__ts",
    "txn_count_1h",
    "amount_sum_7d",
    "amount_avg_30d",
    "amount_max_7d",
    "amount_std_30d",
    "merchants_7d",
    "declines_1d"
  FROM (
    SELECT
      "customer_id",
      "__ts",
      "__ev",
      CAST(COUNT("__ev") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "txn_count_1h",
      CAST(SUM("__v1") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS "amount_sum_7d",
      CAST(AVG("__v2") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS "amount_avg_30d",
      MAX("__v3") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS "amount_max_7d",
      CAST(STDDEV_SAMP("__v4") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS "amount_std_30d",
      CAST(COUNT(DISTINCT "__v5") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "merchants_7d",
      CAST(COUNT("__v6") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts"
        RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "declines_1d"
    FROM (
      SELECT
        "customer_id",
        "__ts",
        NULL AS "__created",
        NULL AS "__v0",
        NULL AS "__v1",
        NULL AS "__v2",
        NULL AS "__v3",
        NULL AS "__v4",
        NULL AS "__v5",
        NULL AS "__v6",
        NULL AS "__ev"
      FROM (
        SELECT DISTINCT
          "customer_id" AS "customer_id",
          "__ts"
        FROM __s
        WHERE
          NOT "customer_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        "customer_id",
        EPOCH_US("ts") AS "__ts",
        EPOCH_US("ingested_at") AS "__created",
        1 AS "__v0",
        amount AS "__v1",
        CASE WHEN status = 'ok' THEN amount END AS "__v2",
        amount AS "__v3",
        amount AS "__v4",
        merchant_id AS "__v5",
        CASE WHEN status = 'declined' THEN 1 END AS "__v6",
        1 AS "__ev"
      FROM (
        SELECT DISTINCT
          *
        FROM "payments"
      ) AS __src
      WHERE
        NOT "customer_id" IS NULL AND NOT "ts" IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    "__ev" IS NULL
)
SELECT
  "__s"."customer_id",
  "__s"."event_timestamp",
  CASE WHEN "__p0"."__amb" THEN "__p0"."__ts" END AS "__amb0",
  "__p0"."customer_id" AS "__ambk0_0",
  "__p0"."last_amount" AS "last_amount",
  "__p0"."last_country" AS "last_country",
  "__v1"."txn_count_1h" AS "txn_count_1h",
  "__v1"."amount_sum_7d" AS "amount_sum_7d",
  "__v1"."amount_avg_30d" AS "amount_avg_30d",
  "__v1"."amount_max_7d" AS "amount_max_7d",
  "__v1"."amount_std_30d" AS "amount_std_30d",
  "__v1"."merchants_7d" AS "merchants_7d",
  "__v1"."declines_1d" AS "declines_1d",
  "__s"."__row"
FROM __m0 AS __s
LEFT JOIN __p0 AS __p0
  ON "__s"."customer_id" = "__p0"."customer_id" AND "__s"."__mts0" = "__p0"."__ts"
LEFT JOIN __view1 AS __v1
  ON "__s"."customer_id" = "__v1"."customer_id" AND "__s"."__ts" = "__v1"."__ts"
ORDER BY
  "__s"."__row"
