"""The Triton model repository on disk (`triton_models/`): models, their numbered versions, and the thin
`model.py` every Python-backend version holds.

Triton's Python backend runs `model.py` in its own embedded interpreter, which ignores PYTHONPATH. The
thin file therefore first adds the site directories named in `CENTRALITA_TRITON_SITE_PACKAGES` (the
launcher sets it to this environment's site-packages; in a container image the packages are installed
system-wide and the variable is empty), then hands over to `inference.triton_backend`, so Triton and
`centralita classify` run the same model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.settings import PROJECT_ROOT

MODELS = ("intent", "sentiment", "entities")

MODEL_PY = '''"""Triton Python backend entry of the `{model}` model: Centralita's code in `inference/` does the work."""

import os
import site

for _path in filter(None, os.environ.get("CENTRALITA_TRITON_SITE_PACKAGES", "").split(os.pathsep)):
    site.addsitedir(_path)

from inference.triton_backend import backend_for  # noqa: E402  (the site directories must come first)

TritonPythonModel = backend_for("{model}")
'''


@dataclass(frozen=True)
class ModelRepository:
    root: Path = PROJECT_ROOT / "triton_models"

    def versions(self, model: str) -> list[int]:
        """Numbered version folders of a model, ascending."""
        folder = self.root / model
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def latest(self, model: str) -> int | None:
        versions = self.versions(model)
        return versions[-1] if versions else None

    def next_version(self, model: str) -> int:
        return (self.latest(model) or 0) + 1

    def version_dir(self, model: str, version: int) -> Path:
        return self.root / model / str(version)

    def template(self, model: str) -> Path:
        """Write (if needed) and return the thin `model.py` for `model`, kept in the model's folder."""
        path = self.root / model / "model.py.template"
        text = MODEL_PY.format(model=model)
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return path
