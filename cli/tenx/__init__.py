"""``tenx``: the command line for people who run jobs on a tenx-gateway (or the original TenxCloud Jobs API).

It talks HTTP only and never imports the ``gateway`` package, so it starts fast and works alone.
"""
# Released together with the gateway, under the same version (tests/tenx/test_version.py checks that they agree).
__version__ = "0.2.0.dev0"
