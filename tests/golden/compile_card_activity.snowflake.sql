-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)
-- snowflake: compile-only, not run or tested here (bigml-fs runs and tests duckdb, postgres and spark)
WITH __s AS (
  SELECT
    *
  FROM __spine
), __view0 AS (
  SELECT
    "card_id",
    "__ts",
    "card_txn_count_1d",
    "card_amount_min_1d",
    "card_amount_var_7d",
    "first_country_7d",
    "last_country_1d"
  FROM (
    SELECT
      "__p"."card_id",
      "__p"."__ts",
      "__p"."card_txn_count_1d",
      "__p"."card_amount_min_1d",
      "__p"."card_amount_var_7d",
      "__l0"."__x" AS "first_country_7d",
      "__l1"."__x" AS "last_country_1d"
    FROM (
      SELECT
        "card_id",
        "__ts",
        "card_txn_count_1d",
        "card_amount_min_1d",
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
          MIN("__v1") OVER (
            PARTITION BY "card_id"
            ORDER BY "__ts"
            RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
          ) AS "card_amount_min_1d",
          CAST(VARIANCE("__v2") OVER (
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
            NULL AS "__v2",
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
            DATE_PART(EPOCH_MICROSECOND, "ts") AS "__ts",
            DATE_PART(EPOCH_MICROSECOND, "ingested_at") AS "__created",
            1 AS "__v0",
            amount AS "__v1",
            amount AS "__v2",
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
    ) AS __p
    LEFT JOIN (
      SELECT
        "card_id",
        "__ts",
        "__x"
      FROM (
        SELECT
          "__q"."card_id",
          "__q"."__ts",
          "__e"."__v" AS "__x",
          ROW_NUMBER() OVER (
            PARTITION BY "__q"."card_id", "__q"."__ts"
            ORDER BY "__e"."__ts" ASC, COALESCE("__e"."__created", -9223372036854775808) ASC, "__e"."__v" ASC
          ) AS "__n"
        FROM (
          SELECT DISTINCT
            "card_id" AS "card_id",
            "__ts"
          FROM __s
          WHERE
            NOT "card_id" IS NULL AND NOT "__ts" IS NULL
        ) AS __q
        INNER JOIN (
          SELECT
            "card_id",
            DATE_PART(EPOCH_MICROSECOND, "ts") AS "__ts",
            DATE_PART(EPOCH_MICROSECOND, "ingested_at") AS "__created",
            country AS "__v"
          FROM src.transactions
          WHERE
            NOT "card_id" IS NULL AND NOT "ts" IS NULL
        ) AS __e
          ON "__e"."card_id" = "__q"."card_id"
          AND "__e"."__ts" >= "__q"."__ts" - 604800000000
          AND "__e"."__ts" < "__q"."__ts"
          AND NOT "__e"."__v" IS NULL
      ) AS __ranked
      WHERE
        "__n" = 1
    ) AS __l0
      ON "__l0"."card_id" = "__p"."card_id" AND "__l0"."__ts" = "__p"."__ts"
    LEFT JOIN (
      SELECT
        "card_id",
        "__ts",
        "__x"
      FROM (
        SELECT
          "__q"."card_id",
          "__q"."__ts",
          "__e"."__v" AS "__x",
          ROW_NUMBER() OVER (
            PARTITION BY "__q"."card_id", "__q"."__ts"
            ORDER BY "__e"."__ts" DESC NULLS LAST, COALESCE("__e"."__created", -9223372036854775808) DESC NULLS LAST, "__e"."__v" DESC NULLS LAST
          ) AS "__n"
        FROM (
          SELECT DISTINCT
            "card_id" AS "card_id",
            "__ts"
          FROM __s
          WHERE
            NOT "card_id" IS NULL AND NOT "__ts" IS NULL
        ) AS __q
        INNER JOIN (
          SELECT
            "card_id",
            DATE_PART(EPOCH_MICROSECOND, "ts") AS "__ts",
            DATE_PART(EPOCH_MICROSECOND, "ingested_at") AS "__created",
            country AS "__v"
          FROM src.transactions
          WHERE
            NOT "card_id" IS NULL AND NOT "ts" IS NULL
        ) AS __e
          ON "__e"."card_id" = "__q"."card_id"
          AND "__e"."__ts" >= "__q"."__ts" - 86400000000
          AND "__e"."__ts" < "__q"."__ts"
          AND NOT "__e"."__v" IS NULL
      ) AS __ranked
      WHERE
        "__n" = 1
    ) AS __l1
      ON "__l1"."card_id" = "__p"."card_id" AND "__l1"."__ts" = "__p"."__ts"
  ) AS __looked
)
SELECT
  "__s"."card_id",
  "__s"."event_timestamp",
  "__v0"."card_txn_count_1d" AS "card_txn_count_1d",
  "__v0"."card_amount_min_1d" AS "card_amount_min_1d",
  "__v0"."card_amount_var_7d" AS "card_amount_var_7d",
  "__v0"."first_country_7d" AS "first_country_7d",
  "__v0"."last_country_1d" AS "last_country_1d",
  "__s"."__row"
FROM __s AS __s
LEFT JOIN __view0 AS __v0
  ON "__s"."card_id" = "__v0"."card_id" AND "__s"."__ts" = "__v0"."__ts"
ORDER BY
  "__s"."__row"
