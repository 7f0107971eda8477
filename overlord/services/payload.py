"""The task payload as Druid serialises the task (``GET /task/{id}``, spec §1.3).

Druid answers a task's JSON as Jackson writes the ``Task`` object, so it holds
fields the client never posted:

* ``groupId`` (defaults to the id) and ``resource``
  (``{"availabilityGroup": <id>, "requiredCapacity": 1}``, ``AbstractTask``'s
  ``TaskResource`` default);
* in ``context``, the keys ``TaskQueue.add`` puts in before storing the task when
  they are absent: ``forceTimeChunkLock: true``
  (``druid.indexer.tasklock.forceTimeChunkLock``) and
  ``useLineageBasedSegmentAllocation: true``.

The rule here: every posted field, known or not, keeps its place and its exact value
(numbers as written, so big integers and floats such as ``1.50`` or ``1e3`` survive);
an addition goes in only where the field is absent or ``null`` (Druid's constructors
replace a null ``groupId``, ``resource`` or ``context`` by the default, in place).
Where an added field goes follows Jackson's property order of the concrete task class
(``PROPERTY_ORDER``: the ``type`` id first, then the ``@JsonCreator`` parameters in
order, then the other ``@JsonProperty`` getters of ``AbstractTask``, with the renamed
``resource`` last): an added field is put right after the posted field that comes last
in the payload among those Jackson writes before it, or first when none does. A
context key Druid adds goes at the end of the posted context (Druid keeps context in a
``HashMap``, whose order is arbitrary).

Submit stores the payload with the additions (as ``TaskQueue.add`` stores the mutated
task); the read path applies the same rule again so rows stored before it read alike
(idempotent: a stored payload that already has every field is answered byte for byte).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from overlord.services.masking import mask_document

# Jackson's serialised property order per task class (see the module docstring).
_ABSTRACT_TASK_ORDER = ("type", "id", "groupId", "resource", "dataSource", "context")
PROPERTY_ORDER: dict[str, tuple[str, ...]] = {
    # NoopTask(id, groupId, dataSource, runTime, isReadyTime, isReadyResult, context)
    "noop": (
        "type",
        "id",
        "groupId",
        "dataSource",
        "runTime",
        "isReadyTime",
        "isReadyResult",
        "context",
        "resource",
    ),
    # KillUnusedSegmentsTask(id, dataSource, interval, versions, context,
    # markAsUnused, batchSize, limit, maxUsedStatusLastUpdatedTime), then
    # AbstractTask's groupId and resource.
    "kill": (
        "type",
        "id",
        "dataSource",
        "interval",
        "versions",
        "context",
        "markAsUnused",
        "batchSize",
        "limit",
        "maxUsedStatusLastUpdatedTime",
        "groupId",
        "resource",
    ),
    # IndexTask(id, resource, spec, context), then groupId and dataSource.
    "index": ("type", "id", "resource", "spec", "context", "groupId", "dataSource"),
    # ParallelIndexSupervisorTask(id, groupId, resource, spec, context), then
    # dataSource (the order of Druid's docs sample for GET /task/{id}).
    "index_parallel": (
        "type",
        "id",
        "groupId",
        "resource",
        "spec",
        "context",
        "dataSource",
    ),
    # SinglePhaseSubTask(id, groupId, resource, supervisorTaskId, subtaskSpecId,
    # numAttempts, spec, context), then dataSource.
    "single_phase_sub_task": (
        "type",
        "id",
        "groupId",
        "resource",
        "supervisorTaskId",
        "subtaskSpecId",
        "numAttempts",
        "spec",
        "context",
        "dataSource",
    ),
}

# TaskQueue.add: context keys added when absent, in this order.
CONTEXT_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("forceTimeChunkLock", True),
    ("useLineageBasedSegmentAllocation", True),
)


class RawNumber:
    """A JSON number kept as written (floats, ``-0``, integers too long for ``int``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RawNumber({self.text})"


def _exact_float(text: str) -> float | RawNumber:
    value = float(text)
    return value if repr(value) == text else RawNumber(text)


def _exact_int(text: str) -> int | RawNumber:
    # "-0" would read back as 0; Python refuses int() of more than 4300 digits.
    if text == "-0" or len(text) > 4000:
        return RawNumber(text)
    return int(text)


def loads_exact(text: str) -> Any:
    """JSON text as Python values, numbers that would not dump back as written kept
    as ``RawNumber``."""
    return json.loads(text, parse_float=_exact_float, parse_int=_exact_int)


def dumps_exact(document: Any) -> str:
    """Compact JSON of a ``loads_exact`` document, every ``RawNumber`` as written."""
    numbers: list[str] = []
    marker = f"\x00{uuid.uuid4().hex}:"

    def placeholder(value: Any) -> str:
        if isinstance(value, RawNumber):
            numbers.append(value.text)
            return f"{marker}{len(numbers) - 1}"
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")

    text = json.dumps(
        document, separators=(",", ":"), ensure_ascii=False, default=placeholder
    )
    if not numbers:
        return text
    # The placeholder's JSON form: the quoted marker, then the number's index.
    quoted = re.escape(json.dumps(marker)[:-1]) + r'(\d+)"'
    return re.sub(quoted, lambda match: numbers[int(match[1])], text)


def _absent(document: dict[str, Any], key: str) -> bool:
    return document.get(key) is None


def _insert(
    document: dict[str, Any], key: str, value: Any, order: tuple[str, ...]
) -> dict[str, Any]:
    """``document`` with ``key`` set: in place when the key is there (null), else
    after the last-placed posted key that Jackson writes before it."""
    if key in document:
        return {**document, key: value}
    before = set(order[: order.index(key)]) if key in order else set(order)
    keys = list(document)
    anchor = max((i for i, name in enumerate(keys) if name in before), default=-1)
    result: dict[str, Any] = {}
    if anchor == -1:
        result[key] = value
    for index, name in enumerate(keys):
        result[name] = document[name]
        if index == anchor:
            result[key] = value
    return result


def add_druid_fields(
    document: dict[str, Any], *, type_name: str, task_id: str, group_id: str
) -> tuple[dict[str, Any], bool]:
    """The task object with Druid's added fields, and whether anything was added."""
    order = PROPERTY_ORDER.get(type_name, _ABSTRACT_TASK_ORDER)
    changed = False
    if _absent(document, "groupId"):
        document = _insert(document, "groupId", group_id, order)
        changed = True
    if _absent(document, "resource"):
        resource = {"availabilityGroup": task_id, "requiredCapacity": 1}
        document = _insert(document, "resource", resource, order)
        changed = True
    context = document.get("context")
    if context is None:
        document = _insert(document, "context", dict(CONTEXT_DEFAULTS), order)
        changed = True
    elif isinstance(context, dict):
        missing = {key: value for key, value in CONTEXT_DEFAULTS if key not in context}
        if missing:
            document = {**document, "context": {**context, **missing}}
            changed = True
    return document, changed


def stored_payload(
    document: dict[str, Any], *, type_name: str, task_id: str, group_id: str
) -> str:
    """The payload text to store at submit: the posted object (from ``loads_exact``,
    its id already in place) with Druid's additions."""
    augmented, _ = add_druid_fields(
        document, type_name=type_name, task_id=task_id, group_id=group_id
    )
    return dumps_exact(augmented)


def payload_for_read(text: str, *, type_name: str, task_id: str, group_id: str) -> str:
    """A stored payload as ``GET /task/{id}`` answers it: Druid's additions where a
    row stored before them lacks them, password fields masked. The stored text itself
    when neither changes anything (the common case keeps its exact bytes)."""
    document = loads_exact(text)
    if not isinstance(document, dict):
        return text
    document, changed = add_druid_fields(
        document, type_name=type_name, task_id=task_id, group_id=group_id
    )
    if "assword" in text:
        document = mask_document(document)
        changed = True
    return dumps_exact(document) if changed else text
