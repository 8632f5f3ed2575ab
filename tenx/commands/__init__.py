"""The commands, each module registering its own on ``tenx.main.cli``."""
from . import account, jobs, reads  # noqa: F401
