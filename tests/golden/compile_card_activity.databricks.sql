-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)
-- databricks: compile-only, not run or tested here (bigml-fs runs and tests duckdb, postgres and spark)
WITH __s AS (
  SELECT
    *
  FROM __spine
), __view0 AS (
  SELECT
    `card_id`,
    `__ts`,
    `card_txn_count_1d`,
    `card_amount_min_1d`,
    `card_amount_var_7d`,
    `first_country_7d`,
    `last_country_1d`
  FROM (
    SELECT
      `card_id`,
      `__ts`,
      `__ev`,
      CAST(COUNT(`__ev`) OVER (
        PARTITION BY `card_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS `card_txn_count_1d`,
      MIN(`__v1`) OVER (
        PARTITION BY `card_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
      ) AS `card_amount_min_1d`,
      CAST(VARIANCE(CAST(`__v2` AS DOUBLE)) OVER (
        PARTITION BY `card_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS `card_amount_var_7d`,
      (
        MIN(`__o3`) OVER (
          PARTITION BY `card_id`
          ORDER BY `__ts` NULLS LAST
          RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
        )
      ).v AS `first_country_7d`,
      (
        MAX(`__o4`) OVER (
          PARTITION BY `card_id`
          ORDER BY `__ts` NULLS LAST
          RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
        )
      ).v AS `last_country_1d`
    FROM (
      SELECT
        `card_id`,
        `__ts`,
        NULL AS `__created`,
        NULL AS `__v0`,
        NULL AS `__v1`,
        NULL AS `__v2`,
        NULL AS `__v3`,
        NULL AS `__o3`,
        NULL AS `__v4`,
        NULL AS `__o4`,
        NULL AS `__ev`
      FROM (
        SELECT DISTINCT
          `card_id` AS `card_id`,
          `__ts`
        FROM __s
        WHERE
          NOT `card_id` IS NULL AND NOT `__ts` IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        `card_id`,
        UNIX_MICROS(`ts`) AS `__ts`,
        UNIX_MICROS(`ingested_at`) AS `__created`,
        1 AS `__v0`,
        amount AS `__v1`,
        amount AS `__v2`,
        country AS `__v3`,
        CASE
          WHEN NOT country IS NULL
          THEN STRUCT(`__ts` AS t, COALESCE(`__created`, -9223372036854775808) AS c, country AS v)
        END AS `__o3`,
        country AS `__v4`,
        CASE
          WHEN NOT country IS NULL
          THEN STRUCT(`__ts` AS t, COALESCE(`__created`, -9223372036854775808) AS c, country AS v)
        END AS `__o4`,
        1 AS `__ev`
      FROM (
        SELECT DISTINCT
          *
        FROM src.transactions
      ) AS __src
      WHERE
        NOT `card_id` IS NULL AND NOT `ts` IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    `__ev` IS NULL
)
SELECT
  `__s`.`card_id`,
  `__s`.`event_timestamp`,
  `__v0`.`card_txn_count_1d` AS `card_txn_count_1d`,
  `__v0`.`card_amount_min_1d` AS `card_amount_min_1d`,
  `__v0`.`card_amount_var_7d` AS `card_amount_var_7d`,
  `__v0`.`first_country_7d` AS `first_country_7d`,
  `__v0`.`last_country_1d` AS `last_country_1d`,
  `__s`.`__row`
FROM __s AS __s
LEFT JOIN __view0 AS __v0
  ON `__s`.`card_id` = `__v0`.`card_id` AND `__s`.`__ts` = `__v0`.`__ts`
ORDER BY
  `__s`.`__row`
