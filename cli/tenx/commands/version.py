"""version: this client's and the gateway's (``GET /version``, which needs no credentials, only the URL)."""
from __future__ import annotations

from typing import Any

import click

from .. import __version__, config
from ..errors import AUTH, TenxError
from ..main import State, cli
from ..output import emit_document


def _gateway_url(state: State) -> str | None:
    """The profile's URL (or TENX_URL, --url): a user who is not logged in may still ask which gateway it is."""
    path, data, name = state.config_data()
    return config.resolve(data, name, overrides={"url": state.url}).get("url")


@cli.command()
@click.option("--client", "client_only", is_flag=True, help="This client's version only; ask no gateway.")
@click.option("--output", "-o", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text",
              show_default=True, help="Output format.")
@click.pass_obj
def version(state: State, client_only: bool, fmt: str) -> int:
    """This client's version and the gateway's (its version and the commit it was built from)."""
    document: dict[str, Any] = {"client": {"version": __version__}}
    failure: TenxError | None = None
    if not client_only:
        url = _gateway_url(state)
        try:
            if url is None:
                raise TenxError("no gateway to ask: not logged in (tenx login, or --url / TENX_URL)", exit_code=AUTH)
            from ..client import server_version
            document["server"] = server_version(url)
        except TenxError as exc:
            failure = exc
    if fmt == "text":
        click.echo(f"Client Version: {__version__}")
        server = document.get("server")
        if server is not None:
            commit = f" (commit {server['commit'][:12]})" if server.get("commit") else ""
            click.echo(f"Server Version: {server.get('version', 'unknown')}{commit}")
    else:
        emit_document(document, fmt)
    if failure is not None:
        raise failure
    return 0
