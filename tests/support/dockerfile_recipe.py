"""The Dockerfile as deploy/image/dockerfile.py reads it (the parser build.sh uses, loaded from its file: deploy/
is not a package): its stages and the image config it gives, for the recipe's unit tests and the built image's."""
import importlib.util

from .harness import ROOT

_spec = importlib.util.spec_from_file_location("image_dockerfile", ROOT / "deploy/image/dockerfile.py")
dockerfile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dockerfile)

PARSED = dockerfile.parse((ROOT / "Dockerfile").read_text())
CONFIG = dockerfile.image_config(PARSED)
