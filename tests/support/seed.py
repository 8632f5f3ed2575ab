"""The job.json of the original API document (../shared/seed/jobs-api.md), used as-is by tests, bench and soak.

Its one copy is the OpenAPI document's example (gateway/api/operations.py), so the documented example and the one
the tests send cannot drift apart. A deep copy: a test that edits it cannot change it for the next.
"""
import copy

from gateway.api.operations import SEED_JOB as _DOCUMENTED

SEED_JOB = copy.deepcopy(_DOCUMENTED)
