-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)
-- trino: compile-only, not run or tested here (bigml-fs runs and tests duckdb, postgres and spark)
WITH __s AS (
  SELECT
    *
  FROM __spine
), __dedup0 AS (
  SELECT
    "customer_id",
    "__ts",
    "last_amount",
    "last_country",
    "__lo",
    "__hi"
  FROM (
    SELECT
      "customer_id",
      "__ts",
      "last_amount",
      "last_country",
      MIN(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("last_amount", "last_country") AS JSON)))))
      ) OVER (PARTITION BY "customer_id", "__ts" ORDER BY "__created" DESC) AS "__lo",
      MAX(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("last_amount", "last_country") AS JSON)))))
      ) OVER (PARTITION BY "customer_id", "__ts" ORDER BY "__created" DESC) AS "__hi",
      ROW_NUMBER() OVER (PARTITION BY "customer_id", "__ts" ORDER BY "__created" DESC) AS _w
    FROM (
      SELECT
        "customer_id",
        CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
        CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
        amount AS "last_amount",
        country AS "last_country"
      FROM "payments"
      WHERE
        NOT "customer_id" IS NULL AND NOT "ts" IS NULL
    ) AS __rows
  ) AS _t
  WHERE
    _w = 1
), __view0 AS (
  SELECT
    "__c"."customer_id",
    "__c"."__ts",
    "__c"."__m" AS "__mts",
    "__d"."last_amount",
    "__d"."last_country",
    "__d"."__lo",
    "__d"."__hi"
  FROM (
    SELECT
      "customer_id",
      "__ts",
      "__side",
      MAX("__m") OVER (
        PARTITION BY "customer_id"
        ORDER BY "__ts", "__side"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "__m"
    FROM (
      SELECT
        "customer_id",
        "__ts",
        0 AS "__side",
        "__ts" AS "__m"
      FROM __dedup0
      UNION ALL
      SELECT
        "customer_id",
        "__ts",
        1 AS "__side",
        CAST(NULL AS BIGINT) AS "__m"
      FROM (
        SELECT DISTINCT
          "customer_id" AS "customer_id",
          "__ts"
        FROM __s
        WHERE
          NOT "customer_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __points
    ) AS __union
  ) AS __c
  LEFT JOIN __dedup0 AS __d
    ON "__d"."customer_id" = "__c"."customer_id" AND "__d"."__ts" = "__c"."__m"
  WHERE
    "__c"."__side" = 1
), __view1 AS (
  SELECT
    "customer_id",
    "segment",
    "credit_limit",
    "__lo",
    "__hi"
  FROM (
    SELECT
      "customer_id",
      "segment",
      "credit_limit",
      MIN(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("segment", "credit_limit") AS JSON)))))
      ) OVER (PARTITION BY "customer_id") AS "__lo",
      MAX(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("segment", "credit_limit") AS JSON)))))
      ) OVER (PARTITION BY "customer_id") AS "__hi",
      ROW_NUMBER() OVER (PARTITION BY "customer_id" ORDER BY "customer_id") AS _w
    FROM (
      SELECT
        "customer_id",
        segment AS "segment",
        credit_limit AS "credit_limit"
      FROM src.customers
      WHERE
        NOT "customer_id" IS NULL
    ) AS __rows
  ) AS _t
  WHERE
    _w = 1
), __dedup2 AS (
  SELECT
    "merchant_id",
    "__ts",
    "risk_tier",
    "__lo",
    "__hi"
  FROM (
    SELECT
      "merchant_id",
      "__ts",
      "risk_tier",
      MIN(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("risk_tier") AS JSON)))))
      ) OVER (PARTITION BY "merchant_id", "__ts" ORDER BY "__created" DESC) AS "__lo",
      MAX(
        FROM_BIG_ENDIAN_64(XXHASH64(TO_UTF8(JSON_FORMAT(CAST(ROW("risk_tier") AS JSON)))))
      ) OVER (PARTITION BY "merchant_id", "__ts" ORDER BY "__created" DESC) AS "__hi",
      ROW_NUMBER() OVER (PARTITION BY "merchant_id", "__ts" ORDER BY "__created" DESC) AS _w
    FROM (
      SELECT
        "merchant_id",
        CAST(ROUND(TO_UNIXTIME("updated_at") * 1000000) AS BIGINT) AS "__ts",
        CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
        risk_tier AS "risk_tier"
      FROM src.merchants
      WHERE
        NOT "merchant_id" IS NULL AND NOT "updated_at" IS NULL
    ) AS __rows
  ) AS _t
  WHERE
    _w = 1
), __view2 AS (
  SELECT
    "__c"."merchant_id",
    "__c"."__ts",
    "__c"."__m" AS "__mts",
    "__d"."risk_tier",
    "__d"."__lo",
    "__d"."__hi"
  FROM (
    SELECT
      "merchant_id",
      "__ts",
      "__side",
      MAX("__m") OVER (
        PARTITION BY "merchant_id"
        ORDER BY "__ts", "__side"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "__m"
    FROM (
      SELECT
        "merchant_id",
        "__ts",
        0 AS "__side",
        "__ts" AS "__m"
      FROM __dedup2
      UNION ALL
      SELECT
        "merchant_id",
        "__ts",
        1 AS "__side",
        CAST(NULL AS BIGINT) AS "__m"
      FROM (
        SELECT DISTINCT
          "merchant_id" AS "merchant_id",
          "__ts"
        FROM __s
        WHERE
          NOT "merchant_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __points
    ) AS __union
  ) AS __c
  LEFT JOIN __dedup2 AS __d
    ON "__d"."merchant_id" = "__c"."merchant_id" AND "__d"."__ts" = "__c"."__m"
  WHERE
    "__c"."__side" = 1
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
      "__p"."customer_id",
      "__p"."__ts",
      "__p"."txn_count_1h",
      "__p"."amount_sum_7d",
      "__p"."amount_avg_30d",
      "__p"."amount_max_7d",
      "__p"."amount_std_30d",
      "__p"."declines_1d",
      CAST(COALESCE("__l0"."__x", 0) AS BIGINT) AS "merchants_7d"
    FROM (
      SELECT
        "customer_id",
        "__ts",
        "txn_count_1h",
        "amount_sum_7d",
        "amount_avg_30d",
        "amount_max_7d",
        "amount_std_30d",
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
          CAST(COUNT("__v5") OVER (
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
            CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
            CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
            1 AS "__v0",
            amount AS "__v1",
            CASE WHEN status = 'ok' THEN amount END AS "__v2",
            amount AS "__v3",
            amount AS "__v4",
            CASE WHEN status = 'declined' THEN 1 END AS "__v5",
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
    ) AS __p
    LEFT JOIN (
      SELECT
        "__q"."customer_id",
        "__q"."__ts",
        COUNT(DISTINCT "__e"."__v") AS "__x"
      FROM (
        SELECT DISTINCT
          "customer_id" AS "customer_id",
          "__ts"
        FROM __s
        WHERE
          NOT "customer_id" IS NULL AND NOT "__ts" IS NULL
      ) AS __q
      INNER JOIN (
        SELECT
          "customer_id",
          CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
          CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
          merchant_id AS "__v"
        FROM "payments"
        WHERE
          NOT "customer_id" IS NULL AND NOT "ts" IS NULL
      ) AS __e
        ON "__e"."customer_id" = "__q"."customer_id"
        AND "__e"."__ts" >= "__q"."__ts" - 604800000000
        AND "__e"."__ts" < "__q"."__ts"
        AND NOT "__e"."__v" IS NULL
      GROUP BY
        "__q"."customer_id",
        "__q"."__ts"
    ) AS __l0
      ON "__l0"."customer_id" = "__p"."customer_id" AND "__l0"."__ts" = "__p"."__ts"
  ) AS __looked
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
        CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
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
        CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
        CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
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
        CAST(ROUND(TO_UNIXTIME("ts") * 1000000) AS BIGINT) AS "__ts",
        CAST(ROUND(TO_UNIXTIME("ingested_at") * 1000000) AS BIGINT) AS "__created",
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
  CASE
    WHEN "__v0"."__lo" IS DISTINCT FROM "__v0"."__hi"
    AND "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."__mts"
  END AS "__amb0",
  CASE WHEN "__v1"."__lo" IS DISTINCT FROM "__v1"."__hi" THEN 0 END AS "__amb1",
  CASE WHEN "__v2"."__lo" IS DISTINCT FROM "__v2"."__hi" THEN "__v2"."__mts" END AS "__amb2",
  CASE
    WHEN "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."last_amount"
  END AS "last_amount",
  CASE
    WHEN "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."last_country"
  END AS "last_country",
  "__v3"."txn_count_1h" AS "txn_count_1h",
  "__v3"."amount_sum_7d" AS "amount_sum_7d",
  "__v3"."amount_avg_30d" AS "amount_avg_30d",
  "__v3"."amount_max_7d" AS "amount_max_7d",
  "__v3"."amount_std_30d" AS "amount_std_30d",
  "__v3"."merchants_7d" AS "merchants_7d",
  "__v3"."declines_1d" AS "declines_1d",
  "__v1"."segment" AS "segment",
  "__v1"."credit_limit" AS "credit_limit",
  "__v2"."risk_tier" AS "risk_tier",
  "__v4"."chargeback_count_30d" AS "chargeback_count_30d",
  "__v4"."chargeback_amount_30d" AS "chargeback_amount_30d",
  "__v5"."card_txn_count_1d" AS "card_txn_count_1d",
  "__v5"."card_amount_var_7d" AS "card_amount_var_7d",
  "__v6"."country_txn_count_1h" AS "country_txn_count_1h",
  "__s"."__row"
FROM __s AS __s
LEFT JOIN __view0 AS __v0
  ON "__s"."customer_id" = "__v0"."customer_id" AND "__s"."__ts" = "__v0"."__ts"
LEFT JOIN __view1 AS __v1
  ON "__s"."customer_id" = "__v1"."customer_id"
LEFT JOIN __view2 AS __v2
  ON "__s"."merchant_id" = "__v2"."merchant_id" AND "__s"."__ts" = "__v2"."__ts"
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
