"""The gateway's image as `make image` builds it (deploy/image/build.sh), checked for what it holds and run where
the gateway's pods run: on the real node tenx-real (containerd, runc), pulled from the local registry as
registry.local/tenx-gateway. Every entry point the image ships answers, as the image's own user on a read-only
root filesystem; the API starts as deploy/deployment.yaml runs it, with only /tmp and the archive's volume
writable. A pod, not a chroot: the user, the read-only root, the dropped capabilities and the pull are the
runtime's, as in production.

Here the API's pod runs alone, on settings that name no reachable region: /healthz and /metrics, which make no
cluster call, are what is checked of the running server. The whole deployment, in-cluster config and all, is
test_deployed_gateway.py's."""
from __future__ import annotations

import configparser
import functools
import io
import json
import re
import secrets
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import parser as gateway_cli
from gateway.version import __version__
from tests.support.harness import ROOT, kubectl
from tests.support.conditions import until

IMAGE_DIR = ROOT / "build/image"
SELECTOR = {"tenx.io/runtime": "containerd"}
TOLERATION = {"key": "tenx.io/runtime", "value": "containerd", "effect": "NoSchedule"}
WAIT = 240  # the first pull of ~110 MB from the local registry, on a machine shared with other runs
DIST_PACKAGES = "usr/local/lib/python3.11/dist-packages/"
READ = {"var/lib/dpkg/status", "etc/passwd"}
LOCKED_DOWN = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@dataclass(frozen=True)
class Image:
    layout: Path
    tag: str
    name: str
    digest: str
    revision: str

    @property
    def ref(self) -> str:  # by digest: the pod runs exactly what was built
        return f"{self.name}@{self.digest}"

    def blob(self, digest: str) -> bytes:
        return (self.layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes()

    def manifest(self) -> dict:
        return json.loads(self.blob(self.digest))

    def config(self) -> dict:
        return json.loads(self.blob(self.manifest()["config"]["digest"]))


@functools.lru_cache(maxsize=4)
def contents(image: Image) -> tuple[frozenset[str], dict[str, str]]:
    """Every path the image's layers hold, and the text of the few files the tests read (the top layer's copy
    wins), in one streamed pass over the layers."""
    names: set[str] = set()
    texts: dict[str, str] = {}
    for layer in image.manifest()["layers"]:
        with tarfile.open(fileobj=io.BytesIO(image.blob(layer["digest"])), mode="r|gz") as tar:
            for member in tar:
                names.add(member.name)
                if member.isfile() and (member.name in READ or member.name.endswith(".dist-info/entry_points.txt")):
                    texts[member.name] = tar.extractfile(member).read().decode()
    return frozenset(names), texts


@pytest.fixture(scope="module")
def image() -> Image:
    """The image `make image` builds (cached: rebuilt only when its inputs changed)."""
    built = subprocess.run([str(ROOT / "deploy/image/build.sh")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, f"deploy/image/build.sh failed:\n{built.stderr[-4000:]}"
    env = dict(line.split("=", 1) for line in (IMAGE_DIR / "image.env").read_text().splitlines() if "=" in line)
    return Image(Path(env["IMAGE_LAYOUT"]), env["IMAGE_TAG"], env["IMAGE_NAME"], env["IMAGE_DIGEST"],
                 env["IMAGE_REVISION"])


@pytest.fixture(scope="module")
def pushed(image, local_cluster) -> Image:
    """The image in the local registry, as `make image-push` puts it there."""
    for tag in (image.tag, "dev"):
        subprocess.run([str(ROOT / "deploy/local/cluster.sh"), "real-push", f"oci:{image.layout}:{tag}",
                        f"{image.name}:{tag}"], check=True, capture_output=True, text=True, timeout=300)
    return image


@pytest.fixture
def namespace(local_cluster):
    name = f"image-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def installed(image: Image) -> set[str]:
    """The Python distributions in the image, as NAME-VERSION of their .dist-info directories."""
    names, _ = contents(image)
    return {m.group(1) for m in (re.match(re.escape(DIST_PACKAGES) + r"([^/]+)\.dist-info/?$", n) for n in names) if m}


def read_member(image: Image, path: str) -> str:
    _, texts = contents(image)
    assert path in texts, f"{path} is in no layer of the image"
    return texts[path]


def console_scripts(image: Image) -> dict[str, str]:
    """The console scripts tenx-gateway's wheel declares, as installed in the image."""
    (dist,) = [name for name in installed(image) if name.startswith("tenx_gateway-")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(read_member(image, f"{DIST_PACKAGES}{dist}.dist-info/entry_points.txt"))
    return dict(entry_points["console_scripts"])


def pod_manifest(namespace: str, name: str, image: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": "Never", "nodeSelector": SELECTOR, "tolerations": [TOLERATION],
                     # the image's own user: runAsNonRoot makes the kubelet refuse one that is root
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"image": image, "imagePullPolicy": "IfNotPresent", "securityContext": LOCKED_DOWN,
                                     **c} for c in containers],
                     **spec}}


def container_states(namespace: str, pod: str) -> dict[str, dict]:
    got = json.loads(kubectl("get", "pod", pod, "-n", namespace, "-o", "json").stdout)
    return {s["name"]: s for s in (got.get("status") or {}).get("containerStatuses") or []}


STUCK = {"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName"}


def wait_terminated(namespace: str, pod: str, names: list[str]) -> dict[str, dict]:
    def done():
        states = container_states(namespace, pod)
        stuck = {n: s["state"]["waiting"] for n, s in states.items()
                 if (s["state"].get("waiting") or {}).get("reason") in STUCK}
        assert not stuck, f"pod {pod} cannot start: {stuck}"
        if all("terminated" in (states.get(n) or {}).get("state", {}) for n in names):
            return states
        return None
    return until(done, WAIT, f"containers {names} of pod {pod} to end")


def logs(namespace: str, pod: str, container: str) -> str:
    return kubectl("logs", pod, "-n", namespace, "-c", container).stdout


# ---------------------------------------------------------------- what the image holds

def test_the_image_is_labelled_with_its_version_and_commit(image):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    labels = image.config()["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] in (head, f"{head}-dirty")
    assert labels["org.opencontainers.image.licenses"] == cfg["metadata"]["license"]
    assert labels["org.opencontainers.image.created"] == image.config()["created"]
    assert labels["org.opencontainers.image.source"]
    assert image.manifest()["annotations"] == labels
    assert image.tag.startswith(f"{__version__}-{head[:12]}")


def test_the_image_config_is_the_dockerfiles(image):
    """build.sh takes ENV, USER, WORKDIR, EXPOSE and CMD from the Dockerfile's final stage: what the Dockerfile
    says is what the built image has."""
    from tests.support.dockerfile_recipe import CONFIG
    config = image.config()["config"]
    assert dict(e.split("=", 1) for e in config["Env"]) == CONFIG["env"]
    assert config["User"] == CONFIG["user"] == "10001:10001"
    assert config["WorkingDir"] == CONFIG["workdir"]
    assert config["Cmd"] == CONFIG["cmd"]
    assert sorted(config["ExposedPorts"]) == sorted(f"{p}/tcp" for p in CONFIG["expose"])


def test_the_image_holds_exactly_the_wheels_pip_built(image):
    """The Dockerfile installs `pip wheel .`'s wheels and nothing else (install.sh, no network); so does make image:
    the distributions in the image are those wheels, pip excepted (it runs from its wheel)."""
    (wheels,) = IMAGE_DIR.glob("wheels-*")
    built = {re.sub(r"-", "_", w.name.split("-")[0]).lower() + "-" + w.name.split("-")[1]
             for w in wheels.glob("*.whl") if not w.name.startswith("pip-")}
    in_image = {name.split("-")[0].lower() + "-" + name.split("-", 1)[1] for name in installed(image)}
    assert in_image == built | {f"tenx_gateway-{__version__}"}


def test_the_debian_packages_are_the_listed_ones(image):
    status = read_member(image, "var/lib/dpkg/status")
    installed_packages = set(re.findall(r"^Package: (\S+)\nStatus: install ok installed", status, re.M))
    listed = {line.split("#")[0].strip() for line in (ROOT / "deploy/image/packages").read_text().splitlines()}
    assert listed - {""} <= installed_packages
    # minbase, not more: no compiler, no pip or other Python library from Debian
    assert not {"gcc", "python3-pip", "python3-setuptools", "perl"} & installed_packages
    passwd = read_member(image, "etc/passwd")
    assert re.search(r"^gateway:x:10001:10001:.*:/nonexistent:/usr/sbin/nologin$", passwd, re.M)


# ---------------------------------------------------------------- run on the real node

def test_every_entry_point_runs_in_the_image_on_the_real_node(pushed, namespace):
    """Each console script tenx-gateway declares (read from the image's own entry_points.txt), each tenx-gateway
    subcommand, and the CMD's gunicorn, in a pod on tenx-real, as the image's user on a read-only root."""
    scripts = console_scripts(pushed)
    assert "tenx-gateway" in scripts
    subcommands = next(a for a in gateway_cli()._actions if a.__class__.__name__ == "_SubParsersAction").choices
    commands = {f"{script}-help": [script, "--help"] for script in scripts}
    commands |= {f"tenx-gateway-{sub}-help": ["tenx-gateway", sub, "--help"] for sub in subcommands}
    commands["gunicorn-version"] = [pushed.config()["config"]["Cmd"][0], "--version"]
    commands["whoami"] = ["python3", "-c", "import os; print(os.getuid(), os.getgid(), os.environ['HOME'])"]
    containers = [{"name": name, "command": command, "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
                  for name, command in commands.items()]
    manifest = pod_manifest(namespace, "entry-points", pushed.ref, containers, automountServiceAccountToken=False,
                            volumes=[{"name": "tmp", "emptyDir": {"medium": "Memory"}}])
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    states = wait_terminated(namespace, "entry-points", list(commands))
    failed = {name: (states[name]["state"]["terminated"], logs(namespace, "entry-points", name)[-2000:])
              for name in commands if states[name]["state"]["terminated"]["exitCode"] != 0}
    assert not failed, f"entry points that failed in the image: {failed}"
    for name, command in commands.items():
        out = logs(namespace, "entry-points", name)
        if name.endswith("-help"):
            assert "usage" in out.lower() and command[0] in out, f"{command}: {out[:500]}"
    assert logs(namespace, "entry-points", "gunicorn-version").startswith("gunicorn (version ")
    assert logs(namespace, "entry-points", "whoami").split() == ["10001", "10001", "/tmp"]


CHECK = """
import json, os, time, urllib.request
answers = {}
for url in ("http://127.0.0.1:8080/healthz", "http://127.0.0.1:9090/metrics"):
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                answers[url] = [response.status, response.read(4000).decode()]
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url}: {exc}")
            time.sleep(0.5)
# gunicorn opens its control socket last, after the workers (and so /healthz) are up
deadline = time.monotonic() + 60
while not os.path.exists("/api-tmp/.gunicorn/gunicorn.ctl") and time.monotonic() < deadline:
    time.sleep(0.2)
written = sorted(os.path.relpath(os.path.join(d, f), "/api-tmp") for d, dirs, files in os.walk("/api-tmp")
                 for f in files + dirs)
print(json.dumps({"answers": answers, "tmp": written}))
"""


def test_the_api_starts_as_deployed_on_a_read_only_root(pushed, namespace):
    """The image's CMD with deploy/gateway.env's settings, deployment.yaml's security context and volumes (/tmp a
    memory emptyDir, the archive's directory a volume of its own): gunicorn, its workers and its metrics listener
    start, and what they write goes to /tmp (the control socket under HOME=/tmp, the Prometheus multiprocess
    files, the stream slots). A second container in the pod asks /healthz and /metrics over the pod's loopback and
    lists what the API wrote to /tmp."""
    settings = dict(line.split("=", 1) for line in (ROOT / "deploy/gateway.env").read_text().splitlines()
                    if line.strip() and not line.startswith("#"))
    env = [{"name": k, "value": v} for k, v in settings.items()] + [{"name": "GATEWAY_NAMESPACE", "value": namespace}]
    containers = [
        {"name": "api", "env": env,
         "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": settings["GATEWAY_DATA_DIR"]}]},
        {"name": "check", "command": ["python3", "-c", CHECK],
         "volumeMounts": [{"name": "tmp", "mountPath": "/api-tmp", "readOnly": True}]},
    ]
    manifest = pod_manifest(namespace, "api", pushed.ref, containers,
                            volumes=[{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                                     {"name": "data", "emptyDir": {}}])
    manifest["spec"]["securityContext"]["fsGroup"] = 10001  # as deployment.yaml: the data volume is the user's
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    states = wait_terminated(namespace, "api", ["check"])
    api_log = logs(namespace, "api", "api")
    assert states["check"]["state"]["terminated"]["exitCode"] == 0, logs(namespace, "api", "check") + api_log[-3000:]
    assert "running" in states["api"]["state"] and states["api"]["restartCount"] == 0, states["api"]
    report = json.loads(logs(namespace, "api", "check").strip().splitlines()[-1])
    healthz, metrics = report["answers"].values()
    assert healthz == [200, '{"status":"ok"}\n']
    assert metrics[0] == 200 and "tenx_gateway_" in metrics[1]
    written = report["tmp"]
    assert ".gunicorn/gunicorn.ctl" in written, written
    assert any(re.match(r"tenx-gateway-metrics-[^/]+/.+\.db$", path) for path in written), written
    assert any(path.startswith("tenx-gateway-streams-") for path in written), written
    assert "Read-only file system" not in api_log and "Permission denied" not in api_log, api_log[-3000:]
