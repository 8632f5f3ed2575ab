"""``tenx``: the command line for people who run jobs on a tenx-gateway (or the original TenxCloud Jobs API).

It talks HTTP only and never imports the ``gateway`` package, so it starts fast and works alone.
"""
__version__ = "0.1.0"
