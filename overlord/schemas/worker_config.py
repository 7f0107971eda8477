"""The worker behaviour config Druid's web console reads and edits (``GET/POST
/druid/indexer/v1/worker``), loaded as Jackson binds ``WorkerBehaviorConfig`` and
written back the way Druid serialises the bound object.

Jackson's polymorphic types here all have a ``defaultImpl``, so an unknown or missing
``type`` binds to the default class rather than failing: ``WorkerBehaviorConfig`` →
``DefaultWorkerBehaviorConfig`` (``default``), ``WorkerSelectStrategy`` →
``EqualDistributionWorkerSelectStrategy`` (``equalDistribution``), ``AutoScaler`` →
``NoopAutoScaler`` (no registered name: Jackson writes its class name). Unknown
properties are dropped (Druid's mapper ignores them); properties Druid's constructors
default are written with the default (``taskLimits``). Wrong JSON shapes are refused
with Jackson's wording.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from overlord.jackson import value_kind

_SETUP = "org.apache.druid.indexing.overlord.setup"
STRATEGIES_WITH_LIMITS = ("equalDistribution", "fillCapacity")
OTHER_STRATEGIES = (
    "equalDistributionWithAffinity",
    "equalDistributionWithCategorySpec",
    "fillCapacityWithAffinity",
    "fillCapacityWithCategorySpec",
    "javascript",
)
NOOP_AUTOSCALER = "NoopAutoScaler"
EMPTY_TASK_LIMITS: dict[str, Any] = {"maxSlotCountByType": {}, "maxSlotRatioByType": {}}
DEFAULT_WORKER_CATEGORY = "_default_worker_category"
# DefaultWorkerBehaviorConfig.defaultConfig(): what Druid runs with until a config is
# posted (WorkerBehaviorConfig.DEFAULT_STRATEGY and a NoopAutoScaler).
DEFAULT_WORKER_CONFIG: dict[str, Any] = {
    "type": "default",
    "selectStrategy": {
        "type": "equalDistribution",
        "affinityConfig": None,
        "taskLimits": EMPTY_TASK_LIMITS,
    },
    "autoScaler": {"type": NOOP_AUTOSCALER, "category": DEFAULT_WORKER_CATEGORY},
}


def _object(value: Any, java_type: str, path: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    where = f" (through reference chain: {path})" if path else ""
    raise ValidationError(
        f"Cannot deserialize value of type `{java_type}` from {value_kind(value)}{where}"
    )


def _typed(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``type`` first, as Jackson writes the type id."""
    return {"type": kind, **{k: v for k, v in document.items() if k != "type"}}


def _strategy(value: Any, path: str) -> dict[str, Any] | None:
    strategy = _object(value, f"{_SETUP}.WorkerSelectStrategy", path)
    if strategy is None:
        return None
    kind = strategy.get("type")
    if kind in OTHER_STRATEGIES:
        return _typed(kind, strategy)
    kind = kind if kind in STRATEGIES_WITH_LIMITS else "equalDistribution"
    affinity = _object(
        strategy.get("affinityConfig"),
        f"{_SETUP}.AffinityConfig",
        f'{path}["affinityConfig"]',
    )
    limits = _object(
        strategy.get("taskLimits"), f"{_SETUP}.TaskLimits", f'{path}["taskLimits"]'
    )
    if limits is not None:
        limits = {
            name: _object(
                limits.get(name), "java.util.Map", f'{path}["taskLimits"]["{name}"]'
            )
            or {}
            for name in EMPTY_TASK_LIMITS
        }
    return {
        "type": kind,
        "affinityConfig": affinity,
        "taskLimits": limits or EMPTY_TASK_LIMITS,
    }


def _autoscaler(value: Any, path: str) -> dict[str, Any] | None:
    scaler = _object(
        value, "org.apache.druid.indexing.overlord.autoscaling.AutoScaler", path
    )
    if scaler is None:
        return None
    kind = scaler.get("type")
    if isinstance(kind, str) and kind not in (NOOP_AUTOSCALER, "noop"):
        # An extension's autoscaler (ec2, …): kept as posted, nothing here runs it.
        return _typed(kind, scaler)
    return {"type": NOOP_AUTOSCALER, "category": scaler.get("category")}


def load_worker_behavior_config(document: Any) -> dict[str, Any]:
    """The posted config as Druid would store and answer it.

    Raises:
        ValidationError: not a JSON object, or a member of the wrong JSON shape.
    """
    config = _object(document, f"{_SETUP}.WorkerBehaviorConfig", "")
    if config is None:
        raise ValidationError("Worker behavior config must be a JSON object, not null")
    name = f"{_SETUP}.DefaultWorkerBehaviorConfig"
    if config.get("type") == "categorized":
        name = f"{_SETUP}.CategorizedWorkerBehaviorConfig"
        scalers = config.get("autoScalers")
        if scalers is not None and not isinstance(scalers, list):
            raise ValidationError(
                "Cannot deserialize value of type `java.util.List<org.apache.druid."
                "indexing.overlord.autoscaling.AutoScaler>` from "
                f'{value_kind(scalers)} (through reference chain: {name}["autoScalers"])'
            )
        return {
            "type": "categorized",
            "selectStrategy": _strategy(
                config.get("selectStrategy"), f'{name}["selectStrategy"]'
            ),
            "autoScalers": None
            if scalers is None
            else [
                _autoscaler(item, f'{name}["autoScalers"][{index}]')
                for index, item in enumerate(scalers)
            ],
        }
    return {
        "type": "default",
        "selectStrategy": _strategy(
            config.get("selectStrategy"), f'{name}["selectStrategy"]'
        ),
        "autoScaler": _autoscaler(config.get("autoScaler"), f'{name}["autoScaler"]'),
    }
