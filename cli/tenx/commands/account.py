"""login, logout, profiles and shell completion."""
from __future__ import annotations

import os
import sys

import click

from .. import config
from ..errors import NotFound, UsageError
from ..main import State, cli
from ..output import print_table

# A name no job can have (not a DNS-1123 label): the gateway checks the credentials, then answers 404 without
# asking the cluster, so a login check costs nothing even for a user with thousands of jobs.
_PROBE_JOB = "-"


def _token(from_stdin: bool) -> str:
    """TENX_TOKEN, else stdin when it is not a terminal (or --token-stdin), else a prompt that does not echo."""
    if os.environ.get("TENX_TOKEN") and not from_stdin:
        return os.environ["TENX_TOKEN"]
    if from_stdin or not sys.stdin.isatty():
        token = sys.stdin.readline().strip()
        if not token:
            raise UsageError("no token on standard input")
        return token
    return click.prompt("Token", hide_input=True).strip()


def _field(given: str | None, env: str, stored: str | None, prompt: str, default: str | None = None) -> str:
    value = given or os.environ.get(env) or stored
    if value:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.lower()} not given: use --{prompt.split()[-1].lower()} or {env}")
    return click.prompt(prompt, default=default)


def verify(credentials: config.Credentials) -> None:
    """The gateway knows the region and accepts the user and token; raises otherwise (auth: exit status 4)."""
    from ..client import Client, regions
    known = regions(credentials.url)
    if known is not None and credentials.region not in known:
        raise UsageError(f"region {credentials.region!r} is not served by {credentials.url}; "
                         f"it serves: {', '.join(known) or 'none'}")
    try:
        Client(credentials).get_job(_PROBE_JOB)
    except NotFound:
        pass  # the credentials were accepted


@cli.command()
@click.option("--url", help="The gateway's URL, e.g. http://127.0.0.1:8080 [env TENX_URL].")
@click.option("--user", "-u", help="Your user name [env TENX_USER].")
@click.option("--token-stdin", is_flag=True, help="Read the token from standard input.")
@click.pass_obj
def login(state: State, url: str | None, user: str | None, token_stdin: bool) -> None:
    """Check a user and token against the gateway and save them in a profile.

    The token is read from TENX_TOKEN, from standard input when it is not a terminal, or from a prompt that does
    not echo it. The profile goes to $XDG_CONFIG_HOME/tenx/config.toml (mode 0600) and becomes the current one.
    """
    path, data, name = state.config_data()
    stored = config.resolve(data, name, environ={})
    url = _field(url or state.url, "TENX_URL", stored["url"], "Gateway URL")
    user = _field(user, "TENX_USER", stored["user"], "User")
    region = state.region or os.environ.get("TENX_REGION") or stored["region"] or config.DEFAULT_REGION
    token = _token(token_stdin)
    credentials = config.Credentials(url=url.rstrip("/"), user=user, token=token, region=region, profile=name)
    verify(credentials)
    config.save(path, config.with_profile(data, name, {"url": credentials.url, "user": user, "token": token,
                                                        "region": region}))
    click.echo(f"Logged in to {credentials.url} as {user} (region {region}); profile {name!r} saved in {path}",
               err=True)


@cli.command()
@click.pass_obj
def logout(state: State) -> None:
    """Forget the current profile's token."""
    path, data, name = state.config_data()
    profile = dict((data.get("profiles") or {}).get(name) or {})
    if "token" not in profile:
        raise UsageError(f"profile {name!r} holds no token")
    profile.pop("token")
    config.save(path, config.with_profile(data, name, profile, current=False))
    click.echo(f"Token of profile {name!r} removed from {path}", err=True)


@cli.group()
def profile() -> None:
    """The config file's profiles."""


@profile.command("list")
@click.pass_obj
def profile_list(state: State) -> None:
    """Profiles, with the current one marked."""
    _, data, current = state.config_data()
    rows = [("*" if name == current else "", name, fields.get("url", ""), fields.get("user", ""),
             fields.get("region", config.DEFAULT_REGION), "yes" if fields.get("token") else "no")
            for name, fields in sorted((data.get("profiles") or {}).items())]
    print_table(("CURRENT", "NAME", "URL", "USER", "REGION", "TOKEN"), rows)


@profile.command("use")
@click.argument("name")
@click.pass_obj
def profile_use(state: State, name: str) -> None:
    """Make NAME the current profile."""
    path, data, _ = state.config_data()
    if name not in (data.get("profiles") or {}):
        raise NotFound(f"no profile {name!r} in {path}")
    config.save(path, {**data, "current_profile": name})
    click.echo(f"Current profile: {name}", err=True)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: e.g. `eval "$(tenx completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class
    completer = get_completion_class(shell)(cli, {}, "tenx", "_TENX_COMPLETE")
    click.echo(completer.source())
