"""Property tests: the vectorized encoders give Feast's own bytes, and decode back.

Oracles: ``feast.infra.key_encoding_utils.serialize_entity_key(..., 3)``,
``feast.type_map.python_values_to_proto_values`` + ``SerializeToString``,
``feast.infra.online_stores.helpers.extract_text_and_num`` (value_text),
``_mmh3`` (Redis field names) and protobuf ``Timestamp`` (Redis ``_ts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigml_fs.store import feast_types as ft
from bigml_fs.store.online import encoding as enc

pytestmark = pytest.mark.feast

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(max_size=150)
TIMES = st.integers(-(2**40), 2**42).map(
    lambda us: datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
)
SCALARS = {
    "int64": (INT64, pa.int64(), ft.INT64),
    "int32": (INT32, pa.int32(), ft.INT32),
    "float64": (st.floats(allow_nan=True, allow_infinity=True), pa.float64(), ft.FLOAT64),
    "float32": (st.floats(width=32, allow_nan=False), pa.float32(), ft.FLOAT32),
    "string": (TEXT, pa.string(), ft.STRING),
    "bytes": (st.binary(max_size=150), pa.binary(), ft.BYTES),
    "bool": (st.booleans(), pa.bool_(), ft.BOOL),
    "timestamp": (TIMES, pa.timestamp("us", tz="UTC"), ft.TIMESTAMP),
}


def _feast_values(values: list, ftype: ft.FeastType) -> list[bytes]:
    from feast.type_map import python_values_to_proto_values

    return [v.SerializeToString() for v in python_values_to_proto_values(values, ftype.value_type_enum)]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(SCALARS)))
def test_values_equal_feast_bytes_and_decode_back(data, kind):
    strategy, arrow, ftype = SCALARS[kind]
    values = data.draw(st.lists(st.one_of(st.none(), strategy), min_size=1, max_size=40))
    # Feast encodes a whole batch of empty values ("", b"", None, NaN) as nulls; with one real value it keeps "" and b""
    values.append(data.draw(strategy.filter(lambda v: v not in ("", b"") and v == v)))
    array = pa.array(values, arrow)
    ours = enc.values(array, ftype).to_pylist()
    assert ours == _feast_values(array.to_pylist(), ftype)
    decoded = enc.decode_column(ours, ftype).to_pylist()
    expected = [None if v != v else v for v in array.to_pylist()]  # NaN is written as null, as Feast does
    if ftype is ft.TIMESTAMP:  # Feast keeps whole seconds (truncated toward zero)
        expected = [
            None if v is None else datetime.fromtimestamp(int(v.timestamp()), tz=timezone.utc) for v in expected
        ]
    assert _same(decoded, expected)
    # the vectorized decoder (long columns) and the one-by-one decoder agree
    long = ours * (enc.SMALL // len(ours) + 1)
    assert _same(enc.decode_column(long, ftype).to_pylist(), enc._decode_slow(long, ftype).to_pylist())


def _same(a: list, b: list) -> bool:
    """Equal lists, NaN equal to NaN."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["int64", "int32", "float64", "float32", "string", "bool"]))
def test_value_texts_equal_feast(data, kind):
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.protos.feast.types.Value_pb2 import Value

    strategy, arrow, ftype = SCALARS[kind]
    values = data.draw(st.lists(st.one_of(st.none(), strategy), min_size=1, max_size=30))
    values.append(data.draw(strategy.filter(lambda v: v not in ("", b"") and v == v)))
    array = pa.array(values, arrow)
    theirs = []
    for raw in _feast_values(array.to_pylist(), ftype):
        proto = Value()
        proto.ParseFromString(raw)
        theirs.append(extract_text_and_num(proto, False)[0])
    assert enc.value_texts(array, ftype) == theirs


KEY_TYPES = {
    "int64": (INT64, pa.int64(), ft.INT64),
    "int32": (INT32, pa.int32(), ft.INT32),
    "string": (TEXT, pa.string(), ft.STRING),
}


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    names=st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True), min_size=1, max_size=3, unique=True),
)
def test_entity_keys_equal_feast(data, names):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values

    kinds = {n: data.draw(st.sampled_from(sorted(KEY_TYPES))) for n in names}
    rows = data.draw(st.integers(1, 20))
    columns = {n: data.draw(st.lists(KEY_TYPES[kinds[n]][0], min_size=rows, max_size=rows)) for n in names}
    table = pa.table({n: pa.array(columns[n], KEY_TYPES[kinds[n]][1]) for n in names})
    ours = enc.entity_keys(table, {n: KEY_TYPES[kinds[n]][2] for n in names}).to_pylist()
    protos = {n: python_values_to_proto_values(columns[n], KEY_TYPES[kinds[n]][2].value_type_enum) for n in names}
    for i in range(rows):
        key = EntityKey(join_keys=names, entity_values=[protos[n][i] for n in names])
        assert ours[i] == serialize_entity_key(key, entity_key_serialization_version=3)
    # the one-row serializer of small requests gives the same bytes
    serialize = enc.key_serializer({n: KEY_TYPES[kinds[n]][2] for n in names})
    assert [serialize([columns[n][i] for n in names]) for i in range(rows)] == ours
    order = enc.sort_order(pa.array(ours, pa.large_binary()))
    assert [ours[i] for i in order] == sorted(ours)


@settings(max_examples=30, deadline=None)
@given(
    times=st.lists(TIMES, min_size=1, max_size=20),
    view=st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
    feature=st.from_regex(r"[a-z_0-9]{1,10}", fullmatch=True),
)
def test_redis_fields_and_timestamps_equal_feast(times, view, feature):
    from feast.infra.online_stores.helpers import _mmh3
    from google.protobuf.timestamp_pb2 import Timestamp

    from bigml_fs.store.online.redis import _timestamp_micros, field_hash, timestamp_protos

    assert field_hash(view, feature) == _mmh3(f"{view}:{feature}")
    ours = timestamp_protos(pa.array(times, pa.timestamp("us", tz="UTC"))).to_pylist()
    for t, raw in zip(times, ours, strict=True):
        proto = Timestamp()
        proto.FromDatetime(t)
        assert raw == proto.SerializeToString()
        assert _timestamp_micros(raw) == round(
            (t - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1)
        )
