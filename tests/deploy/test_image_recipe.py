"""The image's two recipes stay in step: the Dockerfile (operators with Docker) and `make image`
(deploy/image/build.sh, no Docker). Both run deploy/image/install.sh on deploy/image/packages, and build.sh takes
the image's config from the Dockerfile (deploy/image/dockerfile.py); these checks read both recipes and fail when
one copies, installs or configures what the other does not. What the built image holds is checked against the
same files in tests/integration/test_image.py."""
from __future__ import annotations

import configparser
import fnmatch
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.support.dockerfile_recipe import CONFIG, PARSED, dockerfile
from tests.support.harness import ROOT

IMAGE = ROOT / "deploy/image"
BUILD_SH = (IMAGE / "build.sh").read_text()

BUILDER, RUNTIME = PARSED["stages"]


def steps(stage: dict, keyword: str) -> list[dict]:
    return [step for step in stage["instructions"] if step["keyword"] == keyword]


def bash_array(name: str) -> list[str]:
    """A bash array assigned on one line of build.sh: NAME=(a b c)."""
    match = re.search(rf"^{name}=\(([^)]*)\)", BUILD_SH, re.M)
    assert match, f"{name}=(...) not found in deploy/image/build.sh"
    return shlex.split(match.group(1))


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def plain(source: str) -> str:
    """A COPY source without its glob characters (README.md* and constraints.tx[t] copy a file that may be missing)."""
    return re.sub(r"\[(.)\]", r"\1", source).rstrip("*")


# ---------------------------------------------------------------- the wheel is built from the same sources

def test_the_builder_copies_every_package_the_wheel_declares():
    """The wheel's packages come from setup.cfg's packages.find; a package the builder does not copy is missing from
    the wheel while its entry point is still declared (tenx was: `tenx` failed with ModuleNotFoundError)."""
    include = setup_cfg()["options.packages.find"]["include"].replace(",", " ").split()
    packages = {name.split(".")[0] for name in include}
    copied = {plain(src) for step in steps(BUILDER, "COPY") for src in step["value"]["sources"]}
    assert packages <= copied, f"the Dockerfile's builder does not copy {sorted(packages - copied)}"


def test_build_sh_builds_the_wheel_from_what_the_builder_copies():
    copied = {plain(src) for step in steps(BUILDER, "COPY") for src in step["value"]["sources"]}
    assert set(bash_array("WHEEL_SOURCES")) == copied - {"constraints.txt"}
    assert "constraints.txt" in copied and 'IMAGE_CONSTRAINTS:-$ROOT/constraints.txt' in BUILD_SH


def test_everything_either_recipe_copies_exists():
    sources = [plain(src) for stage in PARSED["stages"] for step in steps(stage, "COPY")
               for src in step["value"]["sources"] if "*" not in src and "[" not in src]
    sources += bash_array("WHEEL_SOURCES") + bash_array("APP_FILES")
    missing = [src for src in sources if not (ROOT / src).exists()]
    assert not missing, f"copied but not in the repository: {missing}"


def test_the_dockerignore_lets_through_what_the_dockerfile_uses():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    used = [plain(src) for stage in PARSED["stages"] for step in steps(stage, "COPY")
            for src in step["value"]["sources"]]
    used += [flag.split("source=")[1].split(",")[0] for stage in PARSED["stages"] for step in steps(stage, "RUN")
             for flag in step["flags"] if "type=bind" in flag and "from=" not in flag]
    assert "deploy/image" in used
    for path in used:
        parts = Path(path).parts
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        hit = [p for p in patterns for prefix in prefixes if fnmatch.fnmatch(prefix, p.lstrip("/"))]
        assert not hit, f".dockerignore pattern(s) {hit} exclude {path}, which the Dockerfile copies"


# ---------------------------------------------------------------- the same install steps

def test_both_recipes_run_install_sh_on_the_same_package_list():
    runs = [step["value"] for step in steps(RUNTIME, "RUN")]
    assert runs == ["sh /tmp/image/install.sh system /tmp/image/packages",
                    "sh /tmp/image/install.sh python /tmp/wheels all"]
    # build.sh: mmdebstrap installs the packages and runs `install.sh system` in its chroot; then the wheels in two
    # layers, dependencies first
    assert '--customize-hook="copy-in $HERE/install.sh $HERE/packages /tmp"' in BUILD_SH
    assert """--customize-hook='chroot "$1" sh /tmp/install.sh system /tmp/packages'""" in BUILD_SH
    assert 'sh /mnt/install.sh python /mnt "$which"' in BUILD_SH
    assert re.search(r'build_python_layer "\$BASE" .* deps ', BUILD_SH)
    assert re.search(r'build_python_layer "\$DEPS" .* app ', BUILD_SH)


def test_both_images_keep_the_same_dpkg_excludes():
    (copy,) = [s for s in steps(RUNTIME, "COPY") if s["value"]["sources"] == ["deploy/image/dpkg-excludes"]]
    name = Path(copy["value"]["dest"]).name
    assert f'"$1/etc/dpkg/dpkg.cfg.d/{name}"' in BUILD_SH
    assert '--dpkgopt="$HERE/dpkg-excludes"' in BUILD_SH


def test_both_recipes_put_the_same_files_in_app():
    assert CONFIG["workdir"] == "/app"
    copies = [s["value"] for s in steps(RUNTIME, "COPY") if s["value"]["dest"] in ("./", "/app/")]
    assert [src for copy in copies for src in copy["sources"]] == bash_array("APP_FILES")
    assert '"$ROOT/$f:app/$f"' in BUILD_SH


def test_the_builder_and_build_sh_read_the_same_python():
    """Debian's python3.11 in both: the builder's wheels and the host's must install into the image's Python."""
    (apt,) = steps(BUILDER, "RUN")[:1]
    assert "python3.11" in apt["value"]
    assert "python3.11" in (IMAGE / "packages").read_text().split()
    assert "sys.version_info[:2] != (3, 11)" in BUILD_SH
    assert 'PYTHON=/usr/bin/python3.11' in (IMAGE / "install.sh").read_text()


# ---------------------------------------------------------------- the config the Deployment relies on

def test_the_image_config_is_what_the_deployment_expects():
    manifest = yaml.safe_load((ROOT / "deploy/deployment.yaml").read_text())
    pod = manifest["spec"]["template"]["spec"]
    api = next(c for c in pod["containers"] if c["name"] == "api")
    assert CONFIG["cmd"] == api["command"]
    assert CONFIG["workdir"] == api["workingDir"]
    assert CONFIG["user"] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    # a read-only root: HOME (gunicorn's control socket) must be on the /tmp volume
    assert CONFIG["env"]["HOME"] == "/tmp"
    assert any(m["mountPath"] == "/tmp" for m in api["volumeMounts"])
    assert CONFIG["env"]["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_labels_name_every_oci_annotation_asked_for():
    keys = {k.removeprefix("org.opencontainers.image.") for k in CONFIG["labels"]}
    assert {"version", "revision", "source", "licenses", "created"} <= keys
    assert CONFIG["labels"]["org.opencontainers.image.licenses"] == setup_cfg()["metadata"]["license"]
    declared = {step["value"].split("=")[0] for step in steps(RUNTIME, "ARG")}
    used = {m for value in CONFIG["labels"].values() for m in re.findall(r"\$(\w+)", value)}
    assert used <= declared
    # build.sh gives each ARG a label uses
    for name in used:
        assert f'{name}="$' in BUILD_SH, f"build.sh does not give the Dockerfile's ARG {name}"


# ---------------------------------------------------------------- deploy/image/dockerfile.py

def test_parser_joins_continuations_and_drops_comments():
    parsed = dockerfile.parse("# syntax=docker/dockerfile:1\nFROM a AS b\nENV A=1 \\\n    # a comment\n    B=\"two words\"\n"
                              "RUN --mount=type=bind,source=x,target=/y \\\n  echo hi\nFROM c\nCMD [\"x\", \"-y\"]\n")
    first, second = parsed["stages"]
    assert first["name"] == "b" and second["from"] == "c"
    assert first["instructions"][0]["value"] == {"A": "1", "B": "two words"}
    assert first["instructions"][1]["flags"] == ["--mount=type=bind,source=x,target=/y"]
    assert first["instructions"][1]["value"] == "echo hi"
    assert dockerfile.image_config(parsed)["cmd"] == ["x", "-y"]


@pytest.mark.parametrize("text, message", [
    ("FROM a\nHEALTHCHECK CMD true\n", "unknown instruction HEALTHCHECK"),
    ("FROM a\nENV A 1\n", "only the KEY=VALUE form"),
    ("FROM a\nCMD gunicorn -c x\n", "must be a JSON array"),
    ("ENV A=1\n", "before the first FROM"),
])
def test_parser_refuses_what_build_sh_would_not_understand(text, message):
    with pytest.raises(ValueError, match=message):
        dockerfile.parse(text)
