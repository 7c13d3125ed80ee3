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
)
SELECT
  "__s"."customer_id",
  "__s"."event_timestamp",
  CASE
    WHEN "__v0"."__lo" IS DISTINCT FROM "__v0"."__hi"
    AND "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."__mts"
  END AS "__amb0",
  CASE
    WHEN "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."last_amount"
  END AS "last_amount",
  CASE
    WHEN "__v0"."__mts" >= "__s"."__ts" - 2592000000000
    THEN "__v0"."last_country"
  END AS "last_country",
  "__v1"."txn_count_1h" AS "txn_count_1h",
  "__v1"."amount_sum_7d" AS "amount_sum_7d",
  "__v1"."amount_avg_30d" AS "amount_avg_30d",
  "__v1"."amount_max_7d" AS "amount_max_7d",
  "__v1"."amount_std_30d" AS "amount_std_30d",
  "__v1"."merchants_7d" AS "merchants_7d",
  "__v1"."declines_1d" AS "declines_1d",
  "__s"."__row"
FROM __s AS __s
LEFT JOIN __view0 AS __v0
  ON "__s"."customer_id" = "__v0"."customer_id" AND "__s"."__ts" = "__v0"."__ts"
LEFT JOIN __view1 AS __v1
  ON "__s"."customer_id" = "__v1"."customer_id" AND "__s"."__ts" = "__v1"."__ts"
ORDER BY
  "__s"."__row"
