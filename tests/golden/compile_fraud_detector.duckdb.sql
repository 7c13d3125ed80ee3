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
    "segment",
    "credit_limit",
    MIN(HASH("segment", "credit_limit")) OVER (PARTITION BY "customer_id") AS "__lo",
    MAX(HASH("segment", "credit_limit")) OVER (PARTITION BY "customer_id") AS "__hi"
  FROM (
    SELECT
      "customer_id",
      segment AS "segment",
      credit_limit AS "credit_limit"
    FROM src.customers
    WHERE
      NOT "customer_id" IS NULL
  ) AS __rows
  QUALIFY
    ROW_NUMBER() OVER (PARTITION BY "customer_id" ORDER BY "customer_id") = 1
), __m2 AS MATERIALIZED (
  SELECT
    __b.*,
    "__a"."__ts" AS "__mts2"
  FROM __m0 AS __b
  ASOF LEFT JOIN (
    SELECT
      "merchant_id",
      "__ts"
    FROM (
      SELECT
        "merchant_id",
        EPOCH_US("updated_at") AS "__ts",
        EPOCH_US("ingested_at") AS "__created"
      FROM src.merchants
      WHERE
        NOT "merchant_id" IS NULL AND NOT "updated_at" IS NULL
    ) AS __rows
  ) AS __a
    ON "__b"."merchant_id" = "__a"."merchant_id" AND "__b"."__ts" >= "__a"."__ts"
), __p2 AS (
  SELECT
    "merchant_id",
    "__ts",
    ARG_MAX_NULL("risk_tier", "__ck") AS "risk_tier",
    ARG_MAX_NULL("__amb", "__ck") AS "__amb"
  FROM (
    SELECT
      "merchant_id",
      "__ts",
      "__ck",
      ANY_VALUE("risk_tier") AS "risk_tier",
      MIN("__h") <> MAX("__h") AS "__amb"
    FROM (
      SELECT
        "__r"."merchant_id",
        "__r"."__ts",
        COALESCE("__created", -9223372036854775808) AS "__ck",
        "__r"."risk_tier",
        "__r"."__h"
      FROM (
        SELECT
          "merchant_id",
          EPOCH_US("updated_at") AS "__ts",
          EPOCH_US("ingested_at") AS "__created",
          risk_tier AS "risk_tier",
          HASH(risk_tier) AS "__h"
        FROM src.merchants
        WHERE
          NOT "merchant_id" IS NULL AND NOT "updated_at" IS NULL
      ) AS __r
      SEMI JOIN (
        SELECT DISTINCT
          "merchant_id" AS "merchant_id",
          "__mts2" AS "__ts"
        FROM __m2
        WHERE
          NOT "__mts2" IS NULL
      ) AS __q
        ON "__r"."merchant_id" = "__q"."merchant_id" AND "__r"."__ts" = "__q"."__ts"
    ) AS __c
    GROUP BY
      "merchant_id",
      "__ts",
      "__ck"
  ) AS __g
  GROUP BY
    "merchant_id",
    "__ts"
), __view3 AS (
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
), __view4 AS (
  SELECT
    "merchant_id",
    "__ts",
    "chargeback_count_30d",
    "chargeback_amount_30d"
  FROM (
    SELECT
      "merchant_id",
      "__ts",
      "__ev",
      CAST(COUNT("__ev") OVER (
        PARTITION BY "merchant_id"
        ORDER BY "__ts"
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "chargeback_count_30d",
      CAST(SUM("__v1") OVER (
        PARTITION BY "merchant_id"
        ORDER BY "__ts"
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS "chargeback_amount_30d"
    FROM (
      SELECT
        "merchant_id",
        "__ts",
        NULL AS "__created",
        NULL AS "__v0",
        NULL AS "__v1",
        NULL AS "__ev"
      FROM (
        SELECT DISTINCT
          "merchant_id" AS "merchant_id",
          "__ts"
        FROM __s
        WHERE
          NOT "merchant_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        "merchant_id",
        EPOCH_US("ts") AS "__ts",
        0 AS "__created",
        1 AS "__v0",
        amount AS "__v1",
        1 AS "__ev"
      FROM (
        SELECT DISTINCT
          *
        FROM "bigml_models"."merchant_chargebacks"
      ) AS __src
      WHERE
        NOT "merchant_id" IS NULL AND NOT "ts" IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    "__ev" IS NULL
), __view5 AS (
  SELECT
    "card_id",
    "__ts",
    "card_txn_count_1d",
    "card_amount_var_7d"
  FROM (
    SELECT
      "card_id",
      "__ts",
      "__ev",
      CAST(COUNT("__ev") OVER (
        PARTITION BY "card_id"
        ORDER BY "__ts"
        RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "card_txn_count_1d",
      CAST(VARIANCE("__v1") OVER (
        PARTITION BY "card_id"
        ORDER BY "__ts"
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS "card_amount_var_7d"
    FROM (
      SELECT
        "card_id",
        "__ts",
        NULL AS "__created",
        NULL AS "__v0",
        NULL AS "__v1",
        NULL AS "__ev"
      FROM (
        SELECT DISTINCT
          "card_id" AS "card_id",
          "__ts"
        FROM __s
        WHERE
          NOT "card_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        "card_id",
        EPOCH_US("ts") AS "__ts",
        EPOCH_US("ingested_at") AS "__created",
        1 AS "__v0",
        amount AS "__v1",
        1 AS "__ev"
      FROM (
        SELECT DISTINCT
          *
        FROM src.transactions
      ) AS __src
      WHERE
        NOT "card_id" IS NULL AND NOT "ts" IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    "__ev" IS NULL
), __view6 AS (
  SELECT
    "country",
    "__ts",
    "country_txn_count_1h"
  FROM (
    SELECT
      "country",
      "__ts",
      "__ev",
      CAST(COUNT("__ev") OVER (
        PARTITION BY "country"
        ORDER BY "__ts"
        RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS "country_txn_count_1h"
    FROM (
      SELECT
        "country",
        "__ts",
        NULL AS "__created",
        NULL AS "__v0",
        NULL AS "__ev"
      FROM (
        SELECT DISTINCT
          "country" AS "country",
          "__ts"
        FROM __s
        WHERE
          NOT "country" IS NULL AND NOT "__ts" IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        "country",
        EPOCH_US("ts") AS "__ts",
        EPOCH_US("ingested_at") AS "__created",
        1 AS "__v0",
        1 AS "__ev"
      FROM (
        SELECT DISTINCT
          *
        FROM src.transactions
      ) AS __src
      WHERE
        NOT "country" IS NULL AND NOT "ts" IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    "__ev" IS NULL
)
SELECT
  "__s"."customer_id",
  "__s"."merchant_id",
  "__s"."card_id",
  "__s"."country",
  "__s"."event_timestamp",
  CASE WHEN "__p0"."__amb" THEN "__p0"."__ts" END AS "__amb0",
  "__p0"."customer_id" AS "__ambk0_0",
  CASE WHEN "__v1"."__lo" IS DISTINCT FROM "__v1"."__hi" THEN 0 END AS "__amb1",
  CASE WHEN "__p2"."__amb" THEN "__p2"."__ts" END AS "__amb2",
  "__p2"."merchant_id" AS "__ambk2_0",
  "__p0"."last_amount" AS "last_amount",
  "__p0"."last_country" AS "last_country",
  "__v3"."txn_count_1h" AS "txn_count_1h",
  "__v3"."amount_sum_7d" AS "amount_sum_7d",
  "__v3"."amount_avg_30d" AS "amount_avg_30d",
  "__v3"."amount_max_7d" AS "amount_max_7d",
  "__v3"."amount_std_30d" AS "amount_std_30d",
  "__v3"."merchants_7d" AS "merchants_7d",
  "__v3"."declines_1d" AS "declines_1d",
  "__v1"."segment" AS "segment",
  "__v1"."credit_limit" AS "credit_limit",
  "__p2"."risk_tier" AS "risk_tier",
  "__v4"."chargeback_count_30d" AS "chargeback_count_30d",
  "__v4"."chargeback_amount_30d" AS "chargeback_amount_30d",
  "__v5"."card_txn_count_1d" AS "card_txn_count_1d",
  "__v5"."card_amount_var_7d" AS "card_amount_var_7d",
  "__v6"."country_txn_count_1h" AS "country_txn_count_1h",
  "__s"."__row"
FROM __m2 AS __s
LEFT JOIN __p0 AS __p0
  ON "__s"."customer_id" = "__p0"."customer_id" AND "__s"."__mts0" = "__p0"."__ts"
LEFT JOIN __view1 AS __v1
  ON "__s"."customer_id" = "__v1"."customer_id"
LEFT JOIN __p2 AS __p2
  ON "__s"."merchant_id" = "__p2"."merchant_id" AND "__s"."__mts2" = "__p2"."__ts"
LEFT JOIN __view3 AS __v3
  ON "__s"."customer_id" = "__v3"."customer_id" AND "__s"."__ts" = "__v3"."__ts"
LEFT JOIN __view4 AS __v4
  ON "__s"."merchant_id" = "__v4"."merchant_id" AND "__s"."__ts" = "__v4"."__ts"
LEFT JOIN __view5 AS __v5
  ON "__s"."card_id" = "__v5"."card_id" AND "__s"."__ts" = "__v5"."__ts"
LEFT JOIN __view6 AS __v6
  ON "__s"."country" = "__v6"."country" AND "__s"."__ts" = "__v6"."__ts"
ORDER BY
  "__s"."__row"
