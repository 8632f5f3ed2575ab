"""Names and identifiers: DNS-1123 checks, user name -> namespace, label keys."""
from __future__ import annotations

import hashlib
import re

# Patterns are used with fullmatch: with re.match, "$" also matches before a final "\n", so "abc\n" would pass.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL_MAX = 63
# A pod's name: a DNS-1123 subdomain (labels joined by dots), at most 253 characters.
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_SUBDOMAIN_MAX = 253
HASHED_SUFFIX = re.compile(r"-[0-9a-f]{8}\Z")
# User names go into namespace names and host paths: a leading alphanumeric rules out "." and "..".
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tenx-gateway"
USERNAME_ANNOTATION = "tenx-gateway/username"
JOB_NAME_LABEL = "name"  # the original put name=<job> on the Job and its pod template
# Kueue (GATEWAY_QUEUE=kueue): the label that puts a Job in a LocalQueue, and the LocalQueue the gateway makes in
# each user namespace (the admission policy allows that one name only)
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
LOCAL_QUEUE = "tenx-gateway"
# Set on pods by the Job controller: the new key since Kubernetes 1.27, the legacy key before.
POD_JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.fullmatch(value))


def is_pod_name(value: str) -> bool:
    """A name a pod can have; anything else (".", "..", "a/b", "x\\n") never reaches an apiserver path."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and bool(DNS1123_SUBDOMAIN.fullmatch(value))


def is_username(value: str) -> bool:
    return bool(USERNAME.fullmatch(value))


def namespace_for(username: str, prefix: str = "tenx-") -> str:
    """The namespace that holds a user's jobs.

    A user name that already is a short DNS-1123 label maps to ``<prefix><name>``, so operators can read it.
    Anything else (capitals, dots, underscores, long names) is lowercased, every other character becomes ``-``,
    and an 8-hex-digit hash of the exact name is appended, so two names never share a namespace. A plain name that
    itself ends like a hash suffix is hashed too, so it cannot pose as another user's hashed namespace.
    """
    plain = prefix + username
    if is_dns1123_label(plain) and not HASHED_SUFFIX.search(username):
        return plain
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", username.lower()).strip("-")
    room = DNS1123_LABEL_MAX - len(prefix) - len(digest) - 1
    slug = slug[:room].strip("-")
    return f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"


def container_names(job_name: str, count: int) -> list[str]:
    """The first container carries the job's name, as in the original; later ones get ``-<n>``. Every name is a
    DNS-1123 label and they are all different, even where cutting the job's name to make room for the suffix
    would repeat one already taken (a 63-character ``x...-1`` with two containers)."""
    names = [job_name][:count]
    for index in range(1, count):
        for suffix in (f"-{index}", f"-c{index}", *(f"-c{index}-{n}" for n in range(1, count + 2))):
            candidate = job_name[: DNS1123_LABEL_MAX - len(suffix)].rstrip("-") + suffix
            if candidate not in names:
                names.append(candidate)
                break
    return names
