"""Druid Overlord wire shapes. Field order is Druid's (Jackson creator order)."""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load

from overlord.schemas.fields import DruidDateTime
from overlord.services.views import TaskStatusPlus
from overlord.states import RunnerState, TaskState
from overlord.timeutil import format_druid


class OrderedDumpSchema(Schema):
    class Meta:
        ordered = True


class TaskLocationSchema(OrderedDumpSchema):
    host = fields.String(allow_none=True)
    port = fields.Integer()
    tls_port = fields.Integer(data_key="tlsPort")


class TaskStatusPlusSchema(OrderedDumpSchema):
    """TaskStatusPlus: ``status`` is the deprecated twin of ``statusCode``; both are
    always sent and equal (Airflow reads ``status``, post-index-task ``statusCode``)."""

    id = fields.String()
    group_id = fields.String(data_key="groupId", allow_none=True)
    type = fields.String(allow_none=True)
    created_time = DruidDateTime(data_key="createdTime")
    queue_insertion_time = DruidDateTime(data_key="queueInsertionTime")
    status_code = fields.String(data_key="statusCode")
    status = fields.Function(lambda obj: obj.status_code.value)
    runner_status_code = fields.String(data_key="runnerStatusCode")
    duration = fields.Integer()
    location = fields.Nested(TaskLocationSchema)
    datasource = fields.String(data_key="dataSource", allow_none=True)
    error_msg = fields.String(data_key="errorMsg", allow_none=True)


class TaskStatusSchema(OrderedDumpSchema):
    """TaskStatus of ``POST /taskStatus``: ``status``, not ``statusCode``."""

    id = fields.String()
    status = fields.String()
    duration = fields.Integer()
    error_msg = fields.String(data_key="errorMsg", allow_none=True)
    location = fields.Nested(TaskLocationSchema)


class TaskListArgsSchema(Schema):
    """``GET /tasks`` query. Unknown parameters are ignored, as Druid ignores them
    (the web console sends ``?capabilities``)."""

    class Meta:
        unknown = EXCLUDE

    state = fields.String(load_default=None)
    datasource = fields.String(load_default=None)
    type = fields.String(load_default=None)
    created_time_interval = fields.String(
        data_key="createdTimeInterval", load_default=None
    )
    max = fields.String(load_default=None)

    @pre_load
    def _first_values(self, data: Any, **kwargs: Any) -> Any:
        # A MultiDict: Jersey's @QueryParam takes the first value of a repeated name.
        getter = getattr(data, "get", None)
        return {key: getter(key) for key in data} if getter else data


class LockFilterPolicySchema(Schema):
    """Druid's LockFilterPolicy (load). ``priority`` is a primitive int: 0 if absent."""

    class Meta:
        unknown = EXCLUDE

    datasource = fields.String(required=True)
    priority = fields.Integer(load_default=0, strict=True)
    intervals = fields.List(fields.String(), load_default=None, allow_none=True)
    context = fields.Dict(load_default=dict, allow_none=True)


task_status_plus_schema = TaskStatusPlusSchema()
task_status_schema = TaskStatusSchema()
task_list_args_schema = TaskListArgsSchema()
lock_filter_policies_schema = LockFilterPolicySchema(many=True)


def dump_task_status_plus(status: TaskStatusPlus) -> dict[str, Any]:
    """Druid's TaskStatusPlus as ``GET /task/{id}/status`` and ``GET /tasks`` show
    it: ``TaskStatusPlusSchema`` written out (a unit test keeps the two equal).
    The schema's dump cost 47 µs per status, this one 14 µs (a ``/tasks?max=100``
    list dumps a hundred)."""
    location = status.location
    return {
        "id": status.id,
        "groupId": status.group_id,
        "type": status.type,
        "createdTime": format_druid(status.created_time),
        "queueInsertionTime": format_druid(status.queue_insertion_time),
        "statusCode": status.status_code.value,
        "status": status.status_code.value,
        "runnerStatusCode": status.runner_status_code.value,
        "duration": status.duration,
        "location": {
            "host": location.host,
            "port": location.port,
            "tlsPort": location.tls_port,
        },
        "dataSource": status.datasource,
        "errorMsg": status.error_msg,
    }


# JSON of each state's text, as json.dumps writes it.
_STATE_JSON: dict[str, str] = {
    state: encode_basestring(state.value) for state in (*TaskState, *RunnerState)
}


def _json_text(value: str | None) -> str:
    # What json.dumps(..., ensure_ascii=False) writes for a str or None: the same
    # C function (lone surrogates and all).
    return "null" if value is None else encode_basestring(value)


def encode_task_status_plus(status: TaskStatusPlus) -> str:
    """``json.dumps(dump_task_status_plus(status))`` (compact, not ASCII-escaped),
    written directly: the same text (a unit test compares the two over varied
    rows), without the dict and the encoder's walk over it. For ``GET /tasks``
    rows and the ``GET /task/{id}/status`` body.

    A 100-row ``/tasks?state=complete&max=100`` spent about 1.6 ms of its 6.5 ms
    CPU in the dicts and json.dumps (py-spy --gil, SQLite); encoding the 100 rows
    this way takes 0.34 ms in process (format_druid included).
    """
    location = status.location
    state = _STATE_JSON[status.status_code]
    return (
        f'{{"id":{encode_basestring(status.id)},'
        f'"groupId":{_json_text(status.group_id)},'
        f'"type":{_json_text(status.type)},'
        f'"createdTime":"{format_druid(status.created_time)}",'
        f'"queueInsertionTime":"{format_druid(status.queue_insertion_time)}",'
        f'"statusCode":{state},"status":{state},'
        f'"runnerStatusCode":{_STATE_JSON[status.runner_status_code]},'
        f'"duration":{int.__repr__(status.duration)},'
        f'"location":{{"host":{_json_text(location.host)},'
        f'"port":{int.__repr__(location.port)},'
        f'"tlsPort":{int.__repr__(location.tls_port)}}},'
        f'"dataSource":{_json_text(status.datasource)},'
        f'"errorMsg":{_json_text(status.error_msg)}}}'
    )
