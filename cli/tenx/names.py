"""Job names ``tenx run --generate-name`` makes: the prefix, a dash, five random characters, as Kubernetes'
``generateName`` does (from its alphabet without vowels or look-alikes: no words, no 0/o or 1/l)."""
from __future__ import annotations

import secrets

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX = 5
MAX_NAME = 63  # a DNS-1123 label: the Job's name and its pods' label


def generate(prefix: str) -> str:
    """``hello`` or ``hello-`` -> ``hello-x7k2p``; a prefix too long for the label is cut (and an end dash kept
    single)."""
    base = prefix if prefix.endswith("-") else prefix + "-"
    base = base[:MAX_NAME - SUFFIX - 1].rstrip("-") + "-"
    return base + "".join(secrets.choice(ALPHABET) for _ in range(SUFFIX))
