"""Deterministic data for the card-payments fraud example project.

Writes Parquet under ``data/``: customers (static), merchants (attribute
updates with an ingestion time), transactions (event time on whole seconds, so
ties happen, and an ingestion time 0-2 s later), chargebacks, and fraud labels
known days after the transaction. The transactions span ``DAYS`` days and end
on ``end_day`` (labels and chargebacks may come up to a month later): every
time is shifted by whole days from the original 2024 data set, so the same
seed, row count and end day give the same bytes of data on every machine;
nothing is downloaded. ``generate``'s default end day is the original
``END_DAY`` (2024-03-30); the command line's is today (UTC).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 90
END_DAY = (START + timedelta(days=DAYS - 1)).date()  # 2024-03-30: the last day of transactions
COUNTRIES = np.array(["US", "GB", "DE", "FR", "BR", "IN", "NG", "JP"])
CATEGORIES = np.array(["grocery", "travel", "electronics", "fashion", "gaming", "crypto"])
SEGMENTS = np.array(["standard", "gold", "platinum", "student"])


def _ts(seconds: np.ndarray, origin: int) -> pa.Array:
    micros = (origin + seconds.astype("int64")) * 1_000_000
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def _ts_us(micros_offset: np.ndarray, origin: int) -> pa.Array:
    return pa.array(origin * 1_000_000 + micros_offset.astype("int64"), type=pa.timestamp("us", tz="UTC"))


def generate(out_dir: Path, rows: int = 50_000, seed: int = 7, end_day: date = END_DAY) -> dict[str, int]:
    """Write the example data set, its transactions ending on ``end_day``; return the row count of each file."""
    if isinstance(end_day, datetime):
        end_day = end_day.date()
    shift = (end_day - END_DAY).days  # whole days, so the data depends only on the seed, rows and end day
    origin = int((START + timedelta(days=shift)).timestamp())
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_customers = max(50, rows // 50)
    n_merchants = max(20, rows // 250)
    n_cards = int(n_customers * 1.3)

    customers = pa.table(
        {
            "customer_id": np.arange(1, n_customers + 1, dtype="int64"),
            "home_country": rng.choice(COUNTRIES, n_customers, p=[0.4, 0.15, 0.12, 0.1, 0.08, 0.08, 0.04, 0.03]),
            "segment": rng.choice(SEGMENTS, n_customers),
            "signup_date": pa.array(
                (np.datetime64("2020-01-01") + shift + rng.integers(0, 1400, n_customers)).astype("datetime64[D]")
            ),
            "credit_limit": rng.choice([500.0, 1000.0, 2500.0, 5000.0, 10000.0], n_customers),
        }
    )
    card_owner = rng.integers(1, n_customers + 1, n_cards)
    merchant_risk = rng.beta(1, 12, n_merchants)

    # merchants: an initial row per merchant plus attribute updates over time
    n_updates = n_merchants * 3
    m_ids = np.concatenate([np.arange(1, n_merchants + 1), rng.integers(1, n_merchants + 1, n_updates)])
    m_secs = np.concatenate([np.zeros(n_merchants, dtype="int64"), rng.integers(0, DAYS * 86_400, n_updates)])
    m_lag = rng.integers(0, 3_600_000_000, len(m_ids))
    merchants = pa.table(
        {
            "merchant_id": m_ids.astype("int64"),
            "category": rng.choice(CATEGORIES, len(m_ids)),
            "country": rng.choice(COUNTRIES, len(m_ids)),
            "risk_tier": rng.choice(["low", "medium", "high"], len(m_ids), p=[0.7, 0.2, 0.1]),
            "updated_at": _ts(m_secs, origin),
            "ingested_at": _ts_us(m_secs * 1_000_000 + m_lag, origin),
        }
    )

    secs = np.sort(rng.integers(0, DAYS * 86_400, rows))
    card = rng.integers(0, n_cards, rows)
    customer = card_owner[card]
    merchant = rng.integers(1, n_merchants + 1, rows)
    amount = np.round(rng.lognormal(3.5, 1.1, rows), 2)
    home = np.asarray(customers.column("home_country").to_numpy(zero_copy_only=False))[customer - 1]
    abroad = rng.random(rows) < 0.12
    country = np.where(abroad, rng.choice(COUNTRIES, rows), home)
    status = rng.choice(["ok", "declined", "reversed"], rows, p=[0.9, 0.08, 0.02])
    amount_null = rng.random(rows) < 0.005
    risk = -5.0 + 1.2 * (amount > 150) + 1.5 * abroad + 25 * merchant_risk[merchant - 1] + 0.8 * (status == "declined")
    is_fraud = rng.random(rows) < 1 / (1 + np.exp(-risk))
    ingest_lag = rng.integers(0, 2_000_001, rows)
    transactions = pa.table(
        {
            "txn_id": np.arange(1, rows + 1, dtype="int64"),
            "customer_id": customer.astype("int64"),
            "card_id": card.astype("int64") + 1,
            "merchant_id": merchant.astype("int64"),
            "amount": pa.array(amount, mask=amount_null),
            "currency": np.where(country == "US", "USD", np.where(np.isin(country, ["DE", "FR"]), "EUR", "OTH")),
            "country": country,
            "status": status,
            "ts": _ts(secs, origin),
            "ingested_at": _ts_us(secs * 1_000_000 + ingest_lag, origin),
        }
    )

    label_delay = rng.integers(2 * 86_400, 20 * 86_400, rows)
    labels = pa.table(
        {
            "txn_id": transactions.column("txn_id"),
            "is_fraud": is_fraud.astype("int64"),
            "labeled_at": _ts(secs + label_delay, origin),
        }
    )

    cb_idx = np.flatnonzero(is_fraud & (rng.random(rows) < 0.6))
    cb_secs = secs[cb_idx] + rng.integers(86_400, 30 * 86_400, len(cb_idx))
    chargebacks = pa.table(
        {
            "chargeback_id": np.arange(1, len(cb_idx) + 1, dtype="int64"),
            "merchant_id": merchant[cb_idx].astype("int64"),
            "txn_id": transactions.column("txn_id").take(pa.array(cb_idx)),
            "amount": amount[cb_idx],
            "reported_at": _ts(cb_secs, origin),
        }
    )

    tables = {
        "customers": customers,
        "merchants": merchants,
        "transactions": transactions,
        "fraud_labels": labels,
        "chargebacks": chargebacks,
    }
    for name, table in tables.items():
        pq.write_table(table, out_dir / f"{name}.parquet")
    return {name: table.num_rows for name, table in tables.items()}
