"""Request bodies of the HTTP API, as pydantic models.

``FeaturesRequest`` accepts exactly what Feast's feature server takes at
``/get-online-features`` (Feast clients work unchanged); unknown keys are
refused so a typo such as ``full_feature_name`` is named instead of ignored.
A malformed body becomes a 422 whose ``loc`` names the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

# One entity key value: JSON scalars only (a nested list or object is malformed).
EntityValue = StrictInt | StrictFloat | StrictStr | StrictBool | None


class FeaturesRequest(BaseModel):
    """Body of ``POST /features`` and ``POST /get-online-features`` (Feast's ``GetOnlineFeaturesRequest``)."""

    model_config = ConfigDict(extra="forbid")

    entities: dict[str, list[EntityValue]] = Field(
        description="Join key -> one value per entity row; all lists have the same length.",
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

    entities: dict[str, list[EntityValue]] = Field(
        description="Join key -> one value per entity row, for every key the model's features need.",
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
