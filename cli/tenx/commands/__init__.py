"""The commands, each module registering its own on ``tenx.main.cli``; then every command also takes the group's
``--profile`` and ``--region``, so they may come after the command name too (``tenx login --profile work``)."""
import click

from . import account, jobs, reads, version  # noqa: F401
from ..main import cli


def _setter(attribute: str):
    def store(ctx: click.Context, _param: click.Parameter, value):
        if value is not None:
            setattr(ctx.obj, attribute, value)
    return store


def _add_global_options(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_global_options(sub)
        return
    command.params += [
        click.Option(["--profile", "-p"], expose_value=False, is_eager=True, callback=_setter("profile"),
                     help="Profile of the config file to use [env TENX_PROFILE]."),
        click.Option(["--region", "-r"], expose_value=False, is_eager=True, callback=_setter("region"),
                     help="Region instead of the profile's [env TENX_REGION]."),
    ]


for _command in cli.commands.values():
    _add_global_options(_command)
