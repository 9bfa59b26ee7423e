"""Triton Python backend entry of the `entities` model: Centralita's code in `inference/` does the work."""

import os
import site

for _path in filter(None, os.environ.get("CENTRALITA_TRITON_SITE_PACKAGES", "").split(os.pathsep)):
    site.addsitedir(_path)

from inference.triton_backend import backend_for  # noqa: E402  (the site directories must come first)

TritonPythonModel = backend_for("entities")
