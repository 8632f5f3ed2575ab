"""The two distributions and their locks: tenx-gateway (the server, setup.cfg) and tenx-cli (cli/pyproject.toml),
each wheel with the licence and only its own package, tenx never importing the server, and the pins of the three
locks (make lock) agreeing with each other and with what the projects declare."""
import ast
import configparser
import email
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import gateway

from tests.support.harness import ROOT

CLI = ROOT / "cli"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(text: str) -> str:
    return canonical(re.split(r"[\[<>=!~; ]", text.strip(), maxsplit=1)[0])


def pins(path: Path) -> dict[str, str]:
    return {canonical(name): version for name, version in _PIN.findall(path.read_text())}


def test_tenx_never_imports_the_server():
    for path in (CLI / "tenx").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not [n for n in names if n.split(".")[0] == "gateway"], path


def test_both_projects_ship_the_same_licence():
    assert (ROOT / "LICENSE").read_text().startswith("\n                                 Apache License")
    assert (CLI / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, zipfile.ZipFile]:
    """Both wheels, built as `pip wheel` builds them, from the venv's setuptools (no network)."""
    out = tmp_path_factory.mktemp("wheels")
    for project in (ROOT, CLI):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(out), str(project)], check=True, capture_output=True, timeout=300)
    built = {path.name.split("-")[0]: zipfile.ZipFile(path) for path in out.glob("*.whl")}
    assert set(built) == {"tenx_gateway", "tenx_cli"}
    return built


def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


def top_levels(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" not in name}


def scripts(wheel: zipfile.ZipFile) -> str:
    return wheel.read(next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))).decode()


def licence_of(wheel: zipfile.ZipFile) -> bytes:
    return wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")))


def test_the_server_wheel_has_the_licence_and_no_tenx(wheels):
    wheel = wheels["tenx_gateway"]
    assert top_levels(wheel) == {"gateway"}
    assert licence_of(wheel) == (ROOT / "LICENSE").read_bytes()
    assert metadata(wheel)["Version"] == gateway.__version__
    assert "tenx-gateway = gateway.cli:main" in scripts(wheel) and "tenx =" not in scripts(wheel)
    assert "gateway/console/index.html" in wheel.namelist()  # the console's files still come along


def test_the_cli_wheel_has_the_licence_tenx_alone_and_four_dependencies(wheels):
    wheel = wheels["tenx_cli"]
    assert top_levels(wheel) == {"tenx"}
    assert licence_of(wheel) == (ROOT / "LICENSE").read_bytes()
    meta = metadata(wheel)
    assert meta["Version"] == gateway.__version__ and meta["License-Expression"] == "Apache-2.0"
    assert {requirement_name(r) for r in meta.get_all("Requires-Dist")} == {"click", "rich", "requests", "pyyaml"}
    assert "tenx = tenx.main:main" in scripts(wheel)


def server_requirements(*extras: str) -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += parser["options.extras_require"][extra].splitlines()
    return {requirement_name(line) for line in lines if line.strip() and not line.strip().startswith("#")}


def cli_requirements() -> set[str]:
    project = tomllib.loads((CLI / "pyproject.toml").read_text())["project"]
    return {requirement_name(r) for r in project["dependencies"]}


def test_each_lock_pins_what_its_projects_ask_for_with_hashes():
    server, dev, cli = (pins(ROOT / "requirements" / "gateway.txt"), pins(ROOT / "requirements" / "dev.txt"),
                        pins(CLI / "requirements.txt"))
    assert server_requirements() <= set(server)
    assert server_requirements("test", "bench") | cli_requirements() <= set(dev)
    assert cli_requirements() <= set(cli) and not {"flask", "kubernetes", "gevent"} & set(cli)
    for lock in ("requirements/gateway.txt", "requirements/dev.txt", "cli/requirements.txt"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())  # a pin and its continuation lines
        pinned = [block for block in blocks if _PIN.match(block)]
        assert pinned and all("--hash=sha256:" in block for block in pinned), lock


def test_the_locks_agree_on_every_version():
    dev = pins(ROOT / "requirements" / "dev.txt")
    for lock in (ROOT / "requirements" / "gateway.txt", CLI / "requirements.txt"):
        assert {name: dev.get(name) for name in pins(lock)} == pins(lock), lock


def test_the_images_constraints_are_the_servers_lock():
    """constraints.txt (make lock writes it) is requirements/gateway.txt's pins without hashes, and pip's: what
    the image's recipes build the wheels with."""
    constraints = pins(ROOT / "constraints.txt")
    assert constraints.pop("pip") == re.search(r"^PIP_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert constraints == pins(ROOT / "requirements" / "gateway.txt")
    assert "--hash" not in (ROOT / "constraints.txt").read_text()


def test_the_image_and_the_venv_install_from_the_locks():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--constraint constraints.txt" in dockerfile and "constraints.tx[t]" in dockerfile
    assert 'IMAGE_CONSTRAINTS:-$ROOT/constraints.txt' in (ROOT / "deploy/image/build.sh").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/dev.txt" in makefile and "--no-deps -e . -e ./cli" in makefile
