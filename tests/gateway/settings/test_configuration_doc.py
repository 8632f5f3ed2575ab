"""The README's configuration table names every setting: each Settings field and each variable gunicorn.conf.py reads."""
import re
from dataclasses import fields

from gateway.settings import Settings

from tests.support.harness import ROOT


def documented() -> set[str]:
    text = (ROOT / "docs" / "operators.md").read_text()
    return set(re.findall(r"^\| `([A-Z_]+)` \|", text, flags=re.MULTILINE))


def test_every_gateway_setting_is_in_the_table():
    assert {f"GATEWAY_{f.name.upper()}" for f in fields(Settings)} <= documented()


def test_every_variable_gunicorn_reads_is_in_the_table():
    conf = (ROOT / "gunicorn.conf.py").read_text()
    read = set(re.findall(r'os\.environ(?:\.get\(|\[)"((?:GATEWAY|PROMETHEUS)_[A-Z_]+)"', conf))
    assert read and read <= documented()
