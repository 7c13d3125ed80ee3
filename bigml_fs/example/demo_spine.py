"""Write a small spine of payments for `make demo` to score: ``python -m bigml_fs.example.demo_spine OUT``."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq


def write_demo_spine(out: Path, transactions: Path = Path("data/transactions.parquet"), rows: int = 8) -> int:
    """The join keys and time of a few mid-history payments, as a spine file (Parquet)."""
    table = pq.read_table(transactions, columns=["customer_id", "merchant_id", "card_id", "country", "ts"])
    picked = table.slice(table.num_rows // 2, rows).rename_columns(
        ["customer_id", "merchant_id", "card_id", "country", "event_timestamp"]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(picked, out)
    return picked.num_rows


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".bigml/demo_spine.parquet")
    print(f"wrote {write_demo_spine(target)} spine rows to {target}")
