"""The ``tenx`` command: its group, global options and the one place failures become an exit status.

Every failure is one line on stderr, ``tenx: <what went wrong>`` (the gateway's own message where there is one),
and an exit status from ``errors`` (documented in the README's "For job users" table).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import click

from . import __version__, config
from .errors import INTERRUPTED, USAGE, TenxError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@dataclass
class State:
    """What every command shares: the profile and region chosen on the command line, and one client."""

    profile: str | None = None
    region: str | None = None
    url: str | None = None
    _client: Any = field(default=None, repr=False)

    def config_data(self) -> tuple[Any, dict[str, Any], str]:
        path = config.config_path()
        data = config.load(path)
        return path, data, config.profile_name(data, self.profile)

    def credentials(self) -> config.Credentials:
        path, data, name = self.config_data()
        if config.loose_mode(path):
            click.echo(f"tenx: warning: {path} can be read by others; it holds a token (chmod 600 it)", err=True)
        return config.credentials(data, name, overrides={"region": self.region, "url": self.url})

    def client(self):
        if self._client is None:
            from .client import Client  # requests is imported only by commands that call the gateway
            self._client = Client(self.credentials())
        return self._client


def complete_job_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of job names: the user's jobs, listed with the profile in force (nothing on any error:
    completion must never print one)."""
    try:
        root = ctx.find_root()
        data = config.load(config.config_path())
        name = config.profile_name(data, root.params.get("profile"))
        creds = config.credentials(data, name, overrides={"region": root.params.get("region")})
        from .client import Client
        jobs = Client(creds).json("GET", "/jobs", timeout=5).get("jobs") or []
    except Exception:  # noqa: BLE001
        return []
    names = sorted((job.get("metadata") or {}).get("name", "") for job in jobs)
    return [job for job in names if job.startswith(incomplete)]


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="tenx")
@click.option("--profile", "-p", envvar="TENX_PROFILE", help="Profile of the config file to use [env TENX_PROFILE].")
@click.option("--region", "-r", help="Region to use instead of the profile's [env TENX_REGION].")
@click.option("--url", help="Gateway URL instead of the profile's [env TENX_URL].", hidden=True)
@click.pass_context
def cli(ctx: click.Context, profile: str | None, region: str | None, url: str | None) -> None:
    """tenx: run jobs on a tenx-gateway and follow them.

    \b
    tenx login --url http://127.0.0.1:8080 --user alice
    tenx run hello --image busybox -- echo hello
    tenx ls; tenx get hello; tenx logs hello; tenx rm hello
    """
    ctx.obj = State(profile=profile, region=region, url=url)


def main(argv: list[str] | None = None) -> None:
    """The console script: run the group and turn whatever ended it into one exit status."""
    from . import commands  # noqa: F401  registers the commands on ``cli``
    try:
        result = cli.main(args=argv, prog_name="tenx", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = USAGE
    except click.Abort:
        click.echo("tenx: interrupted", err=True)
        code = INTERRUPTED
    except KeyboardInterrupt:
        click.echo("tenx: interrupted", err=True)
        code = INTERRUPTED
    except TenxError as exc:
        click.echo(f"tenx: {exc.message}", err=True)
        code = exc.exit_code
    except BrokenPipeError:
        code = 0  # `tenx ls | head`: the reader had enough
        _silence_stdout()
    sys.exit(code)


def _silence_stdout() -> None:
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":
    main()
