"""Kueue's CRDs and webhook configurations, from its release source, rewritten for a manager that runs as a host
process beside a host-process apiserver (deploy/local/kueue/kueue.sh).

Upstream points every webhook (admission, and the CRDs' conversion) at a Service in kueue-system, with a CA that
Kueue's internal cert manager writes into them at run time. Here there is no Service to point at: the apiserver
runs on the host and reaches the manager on 127.0.0.1, so each ``clientConfig`` becomes
``url: https://127.0.0.1:<port><path>`` with the CA that kueue.sh made (the manager's own cert manager is off).

Only the webhooks of what this manager serves are kept: Kueue's own kinds and batch/v1 Jobs (the one integration it
runs). The Job webhooks also get an objectSelector on the queue-name label: upstream sends every Job in the cluster
through Kueue (to default a queue name), which on this shared development cluster would make every Job create
depend on the Kueue manager; only Jobs that ask for a queue need it.

    manifests.py SOURCE_DIR PORT CA_FILE OUT_DIR   writes OUT_DIR/crds.yaml and OUT_DIR/webhooks.yaml
"""
from __future__ import annotations

import base64
import sys
from pathlib import Path

import yaml

# libyaml's parser where PyYAML has it: the CRDs are 2 MB of YAML
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str):
    return yaml.load(text, Loader=Loader)

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_WEBHOOKS = {"/mutate-batch-v1-job", "/validate-batch-v1-job"}
OWN_PREFIXES = ("/mutate-kueue-x-k8s-io-", "/validate-kueue-x-k8s-io-")
NAME_PREFIX = "kueue-"  # kustomize's namePrefix upstream (config/default)


def client_config(path: str, port: int, ca_bundle: str) -> dict:
    return {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}


def served(webhook: dict) -> bool:
    path = webhook["clientConfig"]["service"]["path"]
    return path in JOB_WEBHOOKS or path.startswith(OWN_PREFIXES)


def rewrite_webhooks(documents: list[dict], port: int, ca_bundle: str) -> list[dict]:
    out = []
    for document in documents:
        kept = []
        for webhook in document.get("webhooks") or []:
            if not served(webhook):
                continue
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = client_config(path, port, ca_bundle)
            if path in JOB_WEBHOOKS:
                webhook["objectSelector"] = {"matchExpressions": [{"key": QUEUE_LABEL, "operator": "Exists"}]}
            kept.append(webhook)
        document["webhooks"] = kept
        document["metadata"]["name"] = NAME_PREFIX + document["metadata"]["name"]
        out.append(document)
    return out


def rewrite_crd(crd: dict, conversion_paths: dict[str, str], port: int, ca_bundle: str) -> dict:
    """Upstream's kustomize patches (config/components/crd/patches/webhook_in_*.yaml) give these CRDs a conversion
    webhook; the same is written here, as a URL."""
    if crd["metadata"]["name"] in conversion_paths:
        crd["spec"]["conversion"] = {
            "strategy": "Webhook",
            "webhook": {"clientConfig": client_config(conversion_paths[crd["metadata"]["name"]], port, ca_bundle),
                        "conversionReviewVersions": ["v1"]}}
    return crd


def conversion_webhooks(source: Path) -> dict[str, str]:
    """CRD name -> conversion path, from the patches upstream's crd kustomization applies."""
    kustomization = load((source / "config/components/crd/kustomization.yaml").read_text())
    found = {}
    for patch in kustomization.get("patches") or []:
        document = load((source / "config/components/crd" / patch["path"]).read_text())
        client = document["spec"]["conversion"]["webhook"]["clientConfig"]
        found[document["metadata"]["name"]] = client["service"]["path"]
    return found


def crd_files(source: Path) -> list[Path]:
    kustomization = load((source / "config/components/crd/kustomization.yaml").read_text())
    return [source / "config/components/crd" / name for name in kustomization["resources"]]


def main(source_dir: str, port: str, ca_file: str, out_dir: str) -> None:
    source, out = Path(source_dir), Path(out_dir)
    ca_bundle = base64.b64encode(Path(ca_file).read_bytes()).decode()
    paths = conversion_webhooks(source)
    crds = [rewrite_crd(load(f.read_text()), paths, int(port), ca_bundle) for f in crd_files(source)]
    webhook_manifests = (source / "config/components/webhook/manifests.yaml").read_text()
    webhooks = [d for d in yaml.load_all(webhook_manifests, Loader=Loader) if d]
    out.mkdir(parents=True, exist_ok=True)
    (out / "crds.yaml").write_text(yaml.dump_all(crds, Dumper=Dumper, sort_keys=False))
    (out / "webhooks.yaml").write_text(yaml.dump_all(rewrite_webhooks(webhooks, int(port), ca_bundle),
                                                     Dumper=Dumper, sort_keys=False))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(*sys.argv[1:])
