"""Latest-value training sets equal Feast's own get_historical_features on the same data."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from benchmarks.feast_peer import PeerView, feast_store, historical
from tests.helpers import load, write_project

pytestmark = pytest.mark.feast
S = 1_000_000
BASE = pd.Timestamp("2024-03-01", tz="UTC")


def _data(seed: int, n_rows: int, n_keys: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    secs = rng.integers(0, 3 * 1440, n_rows) * 60  # whole minutes: ties on event time happen
    ts = BASE + pd.to_timedelta(secs, unit="s")
    # created: distinct per row (0-2 s later, µs precision) so ties on event time are decided, as in Feast
    created = ts + pd.to_timedelta(rng.permutation(n_rows) * 7 % 2_000_000, unit="us")
    values = rng.normal(100, 30, n_rows).round(3)
    return pa.table(
        {
            "driver_id": pa.array(rng.integers(1, n_keys + 1, n_rows), type=pa.int64()),
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "created": pa.array(created, type=pa.timestamp("us", tz="UTC")),
            "rating": pa.array(np.where(rng.random(n_rows) < 0.05, np.nan, values), type=pa.float64()).fill_null(None),
            "trips": pa.array(rng.integers(0, 50, n_rows), type=pa.int64()),
            "zone": pa.array(rng.choice(["n", "s", "e", "w"], n_rows)),
        }
    )


# ttl 30h fails inside Feast 0.67 itself (Ibis: "Unable to infer interval type from mixed units"),
# so whole days or hours only
@pytest.mark.parametrize(("ttl_hours", "seed"), [(None, 1), (6, 2), (48, 3)])
def test_latest_values_equal_feast(tmp_path, ttl_hours, seed):
    table = _data(seed, n_rows=4000, n_keys=60)
    ttl = timedelta(hours=ttl_hours) if ttl_hours else None
    ttl_line = f"    ttl: {ttl_hours}h\n" if ttl_hours else ""
    features = f"""feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
{ttl_line}    features:
      - {{name: rating}}
      - {{name: trips}}
      - {{name: zone}}
"""
    project = {
        "name": "parity",
        "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
        "sources": [{"name": "stats", "path": "data/stats.parquet", "timestamp": "ts", "created_timestamp": "created"}],
    }
    root = write_project(tmp_path / "p", project, features, tables={"stats": table})

    rng = np.random.default_rng(seed + 100)
    n_spine = 1500
    raw_ts = table.column("ts").to_pandas()
    # spine times: random, exactly on event times, and one microsecond before them
    picks = raw_ts.sample(n_spine // 2, random_state=seed, replace=True).reset_index(drop=True)
    spine_ts = pd.concat(
        [
            picks,
            picks.iloc[: n_spine // 4] - pd.Timedelta(microseconds=1),
            pd.Series(
                BASE + pd.to_timedelta(rng.integers(-3600, 4 * 86_400, n_spine - len(picks) - n_spine // 4), unit="s")
            ),
        ],
        ignore_index=True,
    )
    spine = pd.DataFrame({"driver_id": rng.integers(1, 70, len(spine_ts)), "event_timestamp": spine_ts})
    spine["row_id"] = np.arange(len(spine))

    with load(root) as p:
        ours = p.training_set(
            features=["driver_stats:*"], spine=pa.Table.from_pandas(spine, preserve_index=False)
        ).to_pandas()

    store = feast_store(
        tmp_path / "feast",
        [
            PeerView(
                "driver_stats",
                root / "data" / "stats.parquet",
                ["driver_id"],
                "ts",
                "created",
                {"rating": "Float64", "trips": "Int64", "zone": "String"},
                ttl,
            )
        ],
    )
    theirs = (
        historical(store, spine, ["driver_stats:rating", "driver_stats:trips", "driver_stats:zone"])
        .sort_values("row_id")
        .reset_index(drop=True)
    )

    assert len(ours) == len(theirs) == len(spine)
    assert (ours["row_id"].to_numpy() == theirs["row_id"].to_numpy()).all()
    found = ours["trips"].notna()
    assert 0.2 < found.mean() < 1.0  # the data exercises both hits and misses
    for column in ("rating", "trips", "zone"):
        a, b = ours[column], theirs[column]
        both_null = a.isna() & b.isna()
        equal = both_null | (a.astype(object) == b.astype(object))
        assert equal.all(), (
            f"{column}: {int((~equal).sum())} rows differ, e.g.\n"
            f"{pd.concat([spine[~equal], a[~equal], b[~equal]], axis=1).head()}"
        )
