"""Request bodies of the HTTP API, as pydantic models.

``FeaturesRequest`` accepts exactly what Feast's feature server takes at
``/get-online-features`` (Feast clients work unchanged); unknown keys are
refused so a typo such as ``full_feature_name`` is named instead of ignored.
``entities`` is columns (``{"customer_id": [1, 2]}``, Feast's shape) or a list
of rows (``[{"customer_id": 1}, {"customer_id": 2}]``), turned into columns.
A malformed body becomes a 422 whose ``loc`` names the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

# One entity key value: JSON scalars only (a nested list or object is malformed).
EntityValue = StrictInt | StrictFloat | StrictStr | StrictBool | None

ENTITY_SHAPES = '{"key": [value, ...]} (one list per join key) or [{"key": value}, ...] (one object per row)'


def rows_to_columns(entities: Any) -> Any:
    """A list of row objects as columns (key -> one value per row); any other input as it is.

    Rows must all have the same keys; a row that is not an object, or has other
    keys than the first row, is refused naming its position and the shapes accepted.
    """
    if not isinstance(entities, list):
        return entities
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(entities):
        if not isinstance(row, dict):
            raise ValueError(f"entities[{i}] is not an object (got {type(row).__name__}); entities is {ENTITY_SHAPES}")
        if i == 0:
            columns = {key: [] for key in row}
        elif row.keys() != columns.keys():
            raise ValueError(
                f"entities[{i}] has the keys {', '.join(row) or '(none)'} but entities[0] has "
                f"{', '.join(columns) or '(none)'}; every row needs the same join keys"
            )
        for key, value in row.items():
            columns[key].append(value)
    return columns


Entities = Annotated[dict[str, list[EntityValue]], BeforeValidator(rows_to_columns)]


class FeaturesRequest(BaseModel):
    """Body of ``POST /features`` and ``POST /get-online-features`` (Feast's ``GetOnlineFeaturesRequest``)."""

    model_config = ConfigDict(extra="forbid")

    entities: Entities = Field(
        description="Join key -> one value per entity row; all lists have the same length. "
        'A list of row objects (`[{"customer_id": 1}, ...]`) is accepted too.',
        examples=[{"customer_id": [1, 2]}],
    )
    features: list[str] = Field(
        default=[],
        description="`view:feature` or `view:*` references.",
        examples=[["customer_spend:last_amount", "customer_spend:txn_count_1h"]],
    )
    feature_service: str | None = Field(
        default=None, description="Instead of `features`: a model name; its feature list is served."
    )
    full_feature_names: bool = Field(default=False, description="Name every feature `view__feature`.")
    include_feature_view_version_metadata: bool = Field(
        default=False, description="Accepted for Feast compatibility; bigml_fs has no view versions."
    )


class PredictRequest(BaseModel):
    """Body of ``POST /predict/{model}``: the entity rows to score."""

    model_config = ConfigDict(extra="forbid")

    entities: Entities = Field(
        description="Join key -> one value per entity row, for every key the model's features need "
        "(or a list of row objects).",
        examples=[{"customer_id": [1], "merchant_id": [7], "card_id": [12], "country": ["FR"]}],
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description="A registered version; default: the promoted one, else the latest (same as `/predict/NAME@V`).",
    )


def entity_count(entities: dict[str, list[Any]]) -> int:
    """Rows in an entity dict (the length of its first list; 0 when empty)."""
    for values in entities.values():
        return len(values)
    return 0
