"""The ``tenx`` command: the one place failures become an exit status (the group and its commands: ``app`` and
``commands/``).

Every failure is one line on stderr, ``tenx: <what went wrong>`` (the gateway's own message where there is one),
and an exit status from ``errors`` (documented in docs/users.md, "The tenx command line").
"""
from __future__ import annotations

import sys

import click

from .app import cli
from .errors import INTERRUPTED, USAGE, TenxError

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
