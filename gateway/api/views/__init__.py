"""Blueprints: routes only; the work is done in the modules they call."""
