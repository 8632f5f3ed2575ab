"""Reads the Dockerfile's stages as JSON, so that `make image` (deploy/image/build.sh) takes the image's
configuration from the Dockerfile itself instead of a copy that could drift: the final stage's ENV, USER, WORKDIR,
EXPOSE, CMD and ENTRYPOINT become the OCI config, and tests/deploy/test_image_recipe.py checks the rest (what is copied,
what is run) against what build.sh does.

    python3 deploy/image/dockerfile.py [Dockerfile]      prints {"stages": [{"name", "from", "instructions"}]}

Only the Dockerfile forms this project uses are understood (an instruction it does not know is an error, not a
silent skip): JSON-array CMD/ENTRYPOINT, KEY=VALUE pairs for ENV and LABEL, line continuations, comments."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

KNOWN = {"FROM", "ARG", "ENV", "LABEL", "RUN", "COPY", "WORKDIR", "USER", "EXPOSE", "CMD", "ENTRYPOINT"}


def logical_lines(text: str) -> list[str]:
    """The Dockerfile's instructions, one a line: continuations joined, comments and blank lines dropped
    (a parser directive such as `# syntax=` is a comment here)."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def pairs(words: list[str], instruction: str) -> dict[str, str]:
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"{instruction} {word!r}: only the KEY=VALUE form is understood")
        out[key] = value
    return out


def parse(text: str) -> dict:
    stages: list[dict] = []
    for line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in KNOWN:
            raise ValueError(f"unknown instruction {keyword}: teach deploy/image/dockerfile.py and build.sh")
        if keyword == "FROM":
            words = shlex.split(rest)
            stages.append({"from": words[0], "name": words[2] if len(words) == 3 and words[1].upper() == "AS"
                           else None, "instructions": []})
            continue
        if not stages:
            if keyword == "ARG":
                continue  # a global ARG (the base image's name)
            raise ValueError(f"{keyword} before the first FROM")
        flags = []
        words = shlex.split(rest) if keyword not in ("CMD", "ENTRYPOINT", "RUN") else None
        if keyword in ("CMD", "ENTRYPOINT"):
            try:
                value = json.loads(rest)
            except ValueError:
                value = None
            if not isinstance(value, list):
                raise ValueError(f"{keyword} must be a JSON array")
        elif keyword == "RUN":
            run = rest
            while run.startswith("--"):
                flag, _, run = run.partition(" ")
                flags.append(flag)
                run = run.lstrip()
            value = run
        elif keyword in ("ENV", "LABEL"):
            value = pairs(words, keyword)
        elif keyword == "COPY":
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            value = {"sources": paths[:-1], "dest": paths[-1]}
        elif keyword == "EXPOSE":
            value = words
        else:  # ARG, WORKDIR, USER
            value = " ".join(words)
        stages[-1]["instructions"].append({"keyword": keyword, "flags": flags, "value": value})
    return {"stages": stages}


def image_config(parsed: dict) -> dict:
    """What the final stage sets in the image's config (later instructions override earlier ones, as in Docker)."""
    config: dict = {"env": {}, "labels": {}, "expose": [], "user": None, "workdir": None, "cmd": None,
                    "entrypoint": None}
    for step in parsed["stages"][-1]["instructions"]:
        keyword, value = step["keyword"], step["value"]
        if keyword == "ENV":
            config["env"].update(value)
        elif keyword == "LABEL":
            config["labels"].update(value)
        elif keyword == "EXPOSE":
            config["expose"] += value
        elif keyword in ("USER", "WORKDIR", "CMD", "ENTRYPOINT"):
            config[keyword.lower()] = value
    return config


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "Dockerfile"
    parsed = parse(path.read_text())
    json.dump({**parsed, "config": image_config(parsed)}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
