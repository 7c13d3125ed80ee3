-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)
-- databricks: compile-only, not run or tested here (bigml-fs runs and tests duckdb, postgres and spark)
WITH __s AS (
  SELECT
    *
  FROM __spine
), __view0 AS (
  SELECT
    `customer_id`,
    `__ts`,
    `__m`.`__ts` AS `__mts`,
    `__m`.`last_amount` AS `last_amount`,
    `__m`.`last_country` AS `last_country`,
    `__m`.`__lo` AS `__lo`,
    `__m`.`__hi` AS `__hi`
  FROM (
    SELECT
      `customer_id`,
      `__ts`,
      `__side`,
      LAST(`__m`) IGNORE NULLS OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST, `__side` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__m`
    FROM (
      SELECT
        `customer_id`,
        `__ts`,
        0 AS `__side`,
        STRUCT(
          `__ts` AS __ts,
          `last_amount` AS last_amount,
          `last_country` AS last_country,
          `__lo` AS __lo,
          `__hi` AS __hi
        ) AS `__m`
      FROM (
        SELECT
          `customer_id`,
          `__ts`,
          `last_amount`,
          `last_country`,
          MIN(
            XXHASH64(`last_amount`, `last_amount` IS NULL, `last_country`, `last_country` IS NULL)
          ) OVER (PARTITION BY `customer_id`, `__ts` ORDER BY `__created` DESC) AS `__lo`,
          MAX(
            XXHASH64(`last_amount`, `last_amount` IS NULL, `last_country`, `last_country` IS NULL)
          ) OVER (PARTITION BY `customer_id`, `__ts` ORDER BY `__created` DESC) AS `__hi`
        FROM (
          SELECT
            `customer_id`,
            UNIX_MICROS(`ts`) AS `__ts`,
            UNIX_MICROS(`ingested_at`) AS `__created`,
            amount AS `last_amount`,
            country AS `last_country`
          FROM `payments`
          WHERE
            NOT `customer_id` IS NULL AND NOT `ts` IS NULL
        ) AS __rows
        QUALIFY
          ROW_NUMBER() OVER (PARTITION BY `customer_id`, `__ts` ORDER BY `__created` DESC) = 1
      ) AS __dedup
      UNION ALL
      SELECT
        `customer_id`,
        `__ts`,
        1 AS `__side`,
        NULL AS `__m`
      FROM (
        SELECT DISTINCT
          `customer_id` AS `customer_id`,
          `__ts`
        FROM __s
        WHERE
          NOT `customer_id` IS NULL AND NOT `__ts` IS NULL
      ) AS __points
    ) AS __union
  ) AS __carried
  WHERE
    `__side` = 1
), __view1 AS (
  SELECT
    `customer_id`,
    `__ts`,
    `txn_count_1h`,
    `amount_sum_7d`,
    `amount_avg_30d`,
    `amount_max_7d`,
    `amount_std_30d`,
    `merchants_7d`,
    `declines_1d`
  FROM (
    SELECT
      `customer_id`,
      `__ts`,
      `__ev`,
      CAST(COUNT(`__ev`) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS `txn_count_1h`,
      CAST(SUM(`__v1`) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS `amount_sum_7d`,
      CAST(AVG(CAST(`__v2` AS DOUBLE)) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS `amount_avg_30d`,
      MAX(`__v3`) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
      ) AS `amount_max_7d`,
      CAST(STDDEV_SAMP(CAST(`__v4` AS DOUBLE)) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING
      ) AS DOUBLE) AS `amount_std_30d`,
      CAST(SIZE(
        COLLECT_SET(`__v5`) OVER (
          PARTITION BY `customer_id`
          ORDER BY `__ts` NULLS LAST
          RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING
        )
      ) AS BIGINT) AS `merchants_7d`,
      CAST(COUNT(`__v6`) OVER (
        PARTITION BY `customer_id`
        ORDER BY `__ts` NULLS LAST
        RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING
      ) AS BIGINT) AS `declines_1d`
    FROM (
      SELECT
        `customer_id`,
        `__ts`,
        NULL AS `__created`,
        NULL AS `__v0`,
        NULL AS `__v1`,
        NULL AS `__v2`,
        NULL AS `__v3`,
        NULL AS `__v4`,
        NULL AS `__v5`,
        NULL AS `__v6`,
        NULL AS `__ev`
      FROM (
        SELECT DISTINCT
          `customer_id` AS `customer_id`,
          `__ts`
        FROM __s
        WHERE
          NOT `customer_id` IS NULL AND NOT `__ts` IS NULL
      ) AS __spine_keys
      UNION ALL
      SELECT
        `customer_id`,
        UNIX_MICROS(`ts`) AS `__ts`,
        UNIX_MICROS(`ingested_at`) AS `__created`,
        1 AS `__v0`,
        amount AS `__v1`,
        CASE WHEN status = 'ok' THEN amount END AS `__v2`,
        amount AS `__v3`,
        amount AS `__v4`,
        merchant_id AS `__v5`,
        CASE WHEN status = 'declined' THEN 1 END AS `__v6`,
        1 AS `__ev`
      FROM (
        SELECT DISTINCT
          *
        FROM `payments`
      ) AS __src
      WHERE
        NOT `customer_id` IS NULL AND NOT `ts` IS NULL
    ) AS __union
  ) AS __framed
  WHERE
    `__ev` IS NULL
)
SELECT
  `__s`.`customer_id`,
  `__s`.`event_timestamp`,
  CASE
    WHEN `__v0`.`__lo` IS DISTINCT FROM `__v0`.`__hi`
    AND `__v0`.`__mts` >= `__s`.`__ts` - 2592000000000
    THEN `__v0`.`__mts`
  END AS `__amb0`,
  CASE
    WHEN `__v0`.`__mts` >= `__s`.`__ts` - 2592000000000
    THEN `__v0`.`last_amount`
  END AS `last_amount`,
  CASE
    WHEN `__v0`.`__mts` >= `__s`.`__ts` - 2592000000000
    THEN `__v0`.`last_country`
  END AS `last_country`,
  `__v1`.`txn_count_1h` AS `txn_count_1h`,
  `__v1`.`amount_sum_7d` AS `amount_sum_7d`,
  `__v1`.`amount_avg_30d` AS `amount_avg_30d`,
  `__v1`.`amount_max_7d` AS `amount_max_7d`,
  `__v1`.`amount_std_30d` AS `amount_std_30d`,
  `__v1`.`merchants_7d` AS `merchants_7d`,
  `__v1`.`declines_1d` AS `declines_1d`,
  `__s`.`__row`
FROM __s AS __s
LEFT JOIN __view0 AS __v0
  ON `__s`.`customer_id` = `__v0`.`customer_id` AND `__s`.`__ts` = `__v0`.`__ts`
LEFT JOIN __view1 AS __v1
  ON `__s`.`customer_id` = `__v1`.`customer_id` AND `__s`.`__ts` = `__v1`.`__ts`
ORDER BY
  `__s`.`__row`
