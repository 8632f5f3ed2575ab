"""The bodies the gateway answers with, as marshmallow schemas: used only to describe them in the OpenAPI document.

Job objects pass through from the apiserver untouched, so they are described by their key fields and stay open
(``unknown = INCLUDE`` -> ``additionalProperties: true``); the gateway's own bodies are closed.
"""
from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields
from marshmallow.validate import OneOf

from .health import AVAILABLE, UNAVAILABLE


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


class _Closed(Schema):
    class Meta:
        unknown = RAISE


class ErrorSchema(_Closed):
    """Every failure, whatever its status."""

    code = fields.Integer(required=True, metadata={"description": "the HTTP status code", "example": 404})
    status = fields.String(required=True,
                           metadata={"description": "the status's reason phrase", "example": "Not Found"})
    message = fields.String(required=True, metadata={"example": "job 'myjob' not found"})
    errors = fields.Dict(metadata={"description": "per-field (or per-region) problems, when there are any"})


class ObjectMetaSchema(_Open):
    name = fields.String(required=True)
    namespace = fields.String(required=True, metadata={"description": "the user's namespace"})
    selfLink = fields.String(metadata={"description": "/apis/batch/v1/namespaces/<namespace>/jobs/<name>, "
                                                      "filled in by the gateway as the original did"})
    uid = fields.String()
    resourceVersion = fields.String()
    creationTimestamp = fields.String(allow_none=True)
    labels = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"example": {"name": "myjob"}})


class JobSchema(_Open):
    """A batch/v1 Job as the apiserver wrote it."""

    apiVersion = fields.String(metadata={"example": "batch/v1"})
    kind = fields.String(metadata={"example": "Job"})
    metadata = fields.Nested(ObjectMetaSchema, required=True)
    spec = fields.Dict(required=True, metadata={"description": "the Job's spec (batch/v1 JobSpec)", "example": {
        "parallelism": 1, "completions": 1, "selector": {"matchLabels": {"controller-uid": "a8da9543"}},
        "template": {"spec": {"containers": [{"name": "myjob", "image": "busybox"}], "restartPolicy": "OnFailure"}}}})
    status = fields.Dict(metadata={"description": "the Job's status (batch/v1 JobStatus)", "example": {
        "conditions": [{"type": "Complete", "status": "True"}], "startTime": "2016-05-24T03:21:52Z", "succeeded": 1}})


class QueueSchema(_Closed):
    """Where a job stands in its Kueue queue (GATEWAY_QUEUE=kueue), from its Workload's conditions."""

    name = fields.String(required=True, metadata={"description": "the LocalQueue in the user's namespace",
                                                  "example": "tenx-gateway"})
    state = fields.String(required=True, validate=OneOf(["queued", "admitted"]), metadata={
        "description": "queued: suspended, waiting for Kueue to admit it; admitted: Kueue let it start"})
    cluster_queue = fields.String(metadata={"description": "the ClusterQueue that admitted it, once it has"})
    position = fields.Integer(metadata={"description": "while queued: its place among the user's waiting jobs in "
                                                       "Kueue's order (1 goes next; older first, to the second)",
                                        "example": 2})
    waiting = fields.Integer(metadata={"description": "while queued: the user's jobs waiting in the queue",
                                       "example": 5})
    reason = fields.String(metadata={"description": "while queued: why it waits (the Workload's QuotaReserved "
                                                    "reason, or NoWorkload before Kueue has taken it)",
                                     "example": "Pending"})
    message = fields.String(metadata={"description": "Kueue's words for it", "example": (
        "couldn't assign flavors to pod set main: insufficient unused quota for pods in flavor tenx-gateway, "
        "1 more needed")})
    since = fields.String(metadata={"description": "since when that reason holds"})
    queued_at = fields.String(metadata={"description": "when it entered the queue"})
    admitted_at = fields.String(metadata={"description": "once admitted: when (Kueue's Admitted condition, or the "
                                                         "Job's start once it is unsuspended)"})


class JobWithInstancesSchema(JobSchema):
    instance_names = fields.List(fields.String(), required=True,
                                 metadata={"description": "the job's pods, oldest first"})
    queue = fields.Nested(QueueSchema, metadata={
        "description": "present for a job that went through a queue (GATEWAY_QUEUE=kueue): where it stands there"})


class JobListSchema(_Closed):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    truncated = fields.Boolean(metadata={"description": "present (`true`) only when the user has more jobs than "
                                                        "`GATEWAY_LIST_MAX_JOBS` and the rest were left out"})


class CreatedJobSchema(_Closed):
    job = fields.Nested(JobSchema, required=True)


class DeletedJobSchema(_Closed):
    jobName = fields.String(required=True, metadata={"example": "myjob"})


class InstanceSchema(_Open):
    """One pod of a job, live or archived after it was deleted."""

    name = fields.String(required=True)
    phase = fields.String(required=True, metadata={"example": "Succeeded"})
    uid = fields.String(allow_none=True)
    job = fields.String(allow_none=True)
    node = fields.String(allow_none=True)
    created = fields.String(allow_none=True, metadata={"example": "2016-05-24T03:21:52Z"})
    started = fields.String(allow_none=True)
    finished = fields.String(allow_none=True)
    restart_count = fields.Integer()
    reason = fields.String()
    message = fields.String()
    containers = fields.List(fields.Dict(), metadata={
        "description": "per container: name, state, reason, exit code, restart count",
        "example": [{"name": "myjob", "state": "terminated", "reason": "Completed", "exit_code": 0,
                     "restart_count": 0}]})


class HeldBackSchema(_Closed):
    """Why a job has fewer instances than it asks for: the Job controller's latest refusal to create a pod."""

    reason = fields.String(required=True, validate=OneOf(["ExceededQuota", "FailedCreate"]))
    message = fields.String(required=True, metadata={"example": 'pods "myjob-x7k2p" is forbidden: exceeded quota: '
                                                                "tenx-gateway-quota, requested: pods=1, used: pods=20, "
                                                                "limited: pods=20"})
    since = fields.String(required=True, metadata={"description": "when the controller last reported it"})


class InstanceListSchema(_Closed):
    instances = fields.List(fields.Nested(InstanceSchema), required=True)
    held_back = fields.Nested(HeldBackSchema, metadata={
        "description": "present while the job's pods are held back (a quota, a LimitRange, an admission policy); "
                       "GET /jobs/{job_name} shows the same as a `PodsHeldBack` condition in `status.conditions`"})


class StatusOkSchema(_Closed):
    status = fields.String(required=True, validate=OneOf(["ok"]))


class VersionSchema(_Closed):
    version = fields.String(required=True, metadata={"description": "the gateway's version (PEP 440)",
                                                     "example": "0.2.0"})
    commit = fields.String(metadata={"description": "the git commit it was built from, when known",
                                     "example": "d691d79c0ffee5e1b1e2d26d2b0c8e7f5a1b2c3d"})


class RegionSchema(_Closed):
    name = fields.String(required=True, metadata={"example": "us"})
    display_name = fields.String(required=True, metadata={"example": "North America"})
    status = fields.String(required=True, validate=OneOf([AVAILABLE, UNAVAILABLE]),
                           metadata={"description": "whether the region's apiserver answered just now"})


class RegionListSchema(_Closed):
    regions = fields.List(fields.Nested(RegionSchema), required=True)


class StreamTokenSchema(_Closed):
    stream_token = fields.String(required=True, metadata={"description": "opaque; pass it as `stream_token=` on a "
                                                                        "stream call"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds left to open a stream with it",
                                                         "example": 60})
