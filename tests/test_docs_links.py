"""No link in the docs points nowhere: every Markdown link and image of the repo's *.md files, and every .md file
(with its "Section", where one is named) that a comment or string of the code names, must exist.

Relative links must name a file or folder of the repo, and a `#anchor` a heading of the Markdown file it points into,
by GitHub's slug rules (github-slugger: lower case; everything but letters, digits, marks, `_`, `-` and spaces
dropped; spaces to `-`; a repeated heading gets `-1`, `-2`, ...). External links are only checked for their form:
no network in unit tests."""
import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folders of code whose comments and strings name docs (tests/ names files outside the repo, ../shared/seed/).
CODE_DIRS = ("gateway", "cli/tenx", "bench", "scripts", "deploy")
CODE_FILES = ("Makefile", "Dockerfile", "setup.cfg", "gunicorn.conf.py", ".dockerignore")
# Reports the bench writes into its git-ignored results folder, named bare in its code.
GENERATED = {"flood.md", "latest.md"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); text may hold one level of brackets (an image inside a link)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)>?"
                         r"(?:\s+\"[^\"]*\")?\s*\)")
LINK_TARGET = re.compile(r"\]\([^)\s]*")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_SRC = re.compile(r"<(?:img|a)\s[^>]*(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
# a .md path in code: `deploy/README.md`, `RELIABILITY.md#streams`, and an optional `, "Section"` after it
CODE_MENTION = re.compile(r"(?<![\w./-])((?:\.\./|[\w.-]+/)*[\w.-]*\w\.md)(#[\w-]+)?(?:,?\s+\\?\"([^\"\\]+)\\?\")?")
# "the README's "Follow and watch"", "README "Queueing"": the README at the repo's root
README_MENTION = re.compile(r"\bREADME(?:'s)?,?\s+\\?\"([^\"\\]+)\\?\"")


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text (its Markdown: code spans keep their text, links their label)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        yield number, line


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file has: its headings' slugs (repeats numbered) and explicit HTML anchors."""
    found, seen = set(), {}
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str):
    """(line number, target) of every link and image outside code blocks and code spans."""
    for number, line in prose_lines(text):
        prose = CODE_SPAN.sub("", line)
        for pattern in (INLINE_LINK, HTML_SRC):
            for target in pattern.findall(prose):
                yield number, target
        definition = REFERENCE_DEF.match(prose)
        if definition:
            yield number, definition.group(1)


def check_target(source: Path, target: str, root: Path) -> str | None:
    """Why the link `target` written in `source` points nowhere, or None."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        ok = (host == "localhost" or "." in host.strip(".")) and not re.search(r"\s", target)
        return None if ok else "not a well-formed URL"
    if parts.scheme == "mailto":
        return None if "@" in parts.path else "not a well-formed address"
    if parts.scheme or parts.netloc:
        return f"unexpected scheme {parts.scheme!r}"
    root, path = root.resolve(), unquote(parts.path)
    resolved = (root / path.lstrip("/")) if path.startswith("/") else (source.parent / path if path else source)
    resolved = resolved.resolve()
    if root not in (resolved, *resolved.parents):
        return "points outside the repository"
    if not resolved.exists():
        return "no such file"
    if parts.fragment and resolved.suffix == ".md":
        if unquote(parts.fragment) not in anchors(resolved.read_text(encoding="utf-8")):
            return f"no heading #{parts.fragment} in {resolved.relative_to(root)}"
    return None


def broken_links(files, root: Path) -> list[str]:
    broken = []
    for source in files:
        for number, target in links(source.read_text(encoding="utf-8")):
            why = check_target(source, target, root)
            if why:
                broken.append(f"{source.relative_to(root)}:{number}: ({target}) {why}")
    return broken


def broken_mentions(files, root: Path) -> list[str]:
    """The .md files that code (or a doc's prose) names and that do not exist (looked for from the repo's root and
    the naming file's folder), the #anchors that are not in them, and the sections quoted after one
    (`deploy/README.md, "Regions"`, also across a line break) that no heading starts with."""
    broken = []
    for source in files:
        text = source.read_text(encoding="utf-8", errors="replace")
        if source.suffix == ".md":  # prose only: a code span or block may name what does not exist on purpose
            prose = dict(prose_lines(text))
            text = "\n".join(LINK_TARGET.sub("](", CODE_SPAN.sub("", prose.get(n, "")))  # links: checked above
                             for n in range(1, text.count("\n") + 2))
        mentions = [(m, m.group(1), m.group(2), m.group(3)) for m in CODE_MENTION.finditer(text)]
        mentions += [(m, "README.md", None, m.group(1)) for m in README_MENTION.finditer(text)]
        for match, name, fragment, section in sorted(mentions, key=lambda m: m[0].start()):
            if name in GENERATED:
                continue
            where = f"{source.relative_to(root)}:{text.count(chr(10), 0, match.start()) + 1}: {name}"
            found = next((p for p in (root / name, source.parent / name) if p.is_file()), None)
            if found is None:
                broken.append(f"{where}: no such file")
                continue
            have = anchors(found.read_text(encoding="utf-8"))
            section = section and " ".join(section.split())
            # a #fragment must be an anchor; a section quoted in prose may leave out the heading's tail
            if fragment and fragment[1:] not in have or section and not any(
                    a == slug(section) or a.startswith(slug(section) + "-") for a in have):
                broken.append(f"{where}: no section {section or fragment}")
    return broken


def repo_files() -> list[Path]:
    """The repo's files, tracked or new, without what git ignores (.venv, .local, build outputs)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def markdown_files() -> list[Path]:
    return [p for p in repo_files() if p.suffix == ".md"]


def code_files() -> list[Path]:
    def wanted(p: Path) -> bool:
        relative = p.relative_to(ROOT).as_posix()
        return p.suffix not in (".md", ".png", ".gz", ".db") and (
            relative in CODE_FILES or any(relative.startswith(d + "/") for d in CODE_DIRS))
    return [p for p in repo_files() if wanted(p)]


def test_the_docs_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "CHANGELOG.md", "RELIABILITY.md", "deploy/README.md", "bench/README.md"} <= names
    assert any(p.name == "__init__.py" for p in code_files())


def test_every_link_in_the_docs_points_somewhere():
    broken = broken_links(markdown_files(), ROOT)
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_doc_the_code_and_the_docs_name_exists():
    broken = broken_mentions(code_files() + markdown_files(), ROOT)
    assert not broken, "code names docs that do not exist:\n" + "\n".join(broken)


@pytest.mark.parametrize("heading, anchor", [
    ("Quick start", "quick-start"),
    ("The watch cache (`bench/cache.py`, part of `python -m bench.run`)",
     "the-watch-cache-benchcachepy-part-of-python--m-benchrun"),
    ("Clients that never read, and other hostile clients", "clients-that-never-read-and-other-hostile-clients"),
    ("1. Build and push the image", "1-build-and-push-the-image"),
    ("`make test` from a clean clone", "make-test-from-a-clean-clone"),
    ("job.json", "jobjson"),
    ("Users, tokens_and [tenancy](x.md)", "users-tokens_and-tenancy"),
    ("工作任务 API", "工作任务-api"),
])
def test_slugs_follow_github(heading, anchor):
    assert slug(heading) == anchor


def test_repeated_headings_and_fenced_code():
    text = "# A\n## Notes\n```sh\n# not a heading\n[x](nowhere.md)\n```\n## Notes\n<a name=\"here\"></a>\n"
    assert anchors(text) == {"a", "notes", "notes-1", "here"}
    assert list(links(text)) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n## Set up\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/guide.md#set-up) ![pic](docs/guide.md) [top](#intro) `[code](gone.md)`\n"
        "# Intro\n[gone](docs/STREAMS.md) [bad anchor](docs/guide.md#setup) [web](https://example.org/a#b)\n"
        "[not a url](https://nohost) [out](../../etc/passwd)\n[ref]: docs/missing.md\n")
    assert broken_links([readme], tmp_path) == [
        "README.md:3: (docs/STREAMS.md) no such file",
        "README.md:3: (docs/guide.md#setup) no heading #setup in docs/guide.md",
        "README.md:4: (https://nohost) not a well-formed URL",
        "README.md:4: (../../etc/passwd) points outside the repository",
        "README.md:5: (docs/missing.md) no such file",
    ]


def test_a_missing_doc_named_in_code_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("# API\n## Follow and watch\n")
    code = tmp_path / "follow.py"
    (tmp_path / "README.md").write_text("# Tool\n## Quick start\n")
    code.write_text('# see docs/api.md, "Follow and watch", and latest.md\n'
                    'HELP = "streams: STREAMS.md; docs/api.md#errors"\n'
                    '# why one queue: docs/api.md, "Queueing"; the README\'s "Quick start"\n'
                    'DOC = "See the README\'s \\"Follow and watch\\"."\n')
    assert broken_mentions([code], tmp_path) == [
        "follow.py:2: STREAMS.md: no such file",
        "follow.py:2: docs/api.md: no section #errors",
        "follow.py:3: docs/api.md: no section Queueing",
        "follow.py:4: README.md: no section Follow and watch",
    ]
