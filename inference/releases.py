"""Which version of a model serves which conversation: a stable version and, optionally, a canary.

The release of a model is a small JSON file next to its versions (`triton_models/<model>/release.json`),
so the choice is versioned with the models, visible in review, and read by every worker (the client
reloads it when it changes). A conversation goes to the canary when its id hashes below the canary share:
the same conversation always sees the same version (sticky), and raising the share only adds
conversations. `centralita models promote` makes the canary stable; `rollback` drops the canary, or,
without one, returns to the previous version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from inference.model_repository import ModelRepository

RELEASE_FILE = "release.json"


class ReleaseError(ValueError):
    """A promote/rollback/canary request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Release:
    stable: int
    canary: int | None = None
    canary_share: float = 0.0

    def version_for(self, conversation_id: str) -> int:
        """Sticky assignment: a conversation's hash decides, so its version never flips mid-conversation."""
        if self.canary is None or self.canary_share <= 0:
            return self.stable
        digest = hashlib.sha256(conversation_id.encode("utf-8", errors="replace")).digest()
        return self.canary if int.from_bytes(digest[:8], "big") / 2**64 < self.canary_share else self.stable


@dataclass(frozen=True)
class Releases:
    repository: ModelRepository

    def path(self, model: str) -> Path:
        return self.repository.root / model / RELEASE_FILE

    def get(self, model: str) -> Release:
        """The model's release; without a release file, the newest version is stable."""
        try:
            return Release(**json.loads(self.path(model).read_text()))
        except FileNotFoundError:
            latest = self.repository.latest(model)
            if latest is None:
                raise ReleaseError(f"{model} has no versions in {self.repository.root}") from None
            return Release(stable=latest)

    def save(self, model: str, release: Release) -> Release:
        versions = self.repository.versions(model)
        for version in filter(None, (release.stable, release.canary)):
            if version not in versions:
                raise ReleaseError(f"{model} has no version {version} (versions: {versions})")
        if not 0.0 <= release.canary_share <= 1.0:
            raise ReleaseError(f"canary share must be between 0 and 1, not {release.canary_share}")
        self.path(model).write_text(json.dumps(asdict(release), indent=2) + "\n")
        return release

    def start_canary(self, model: str, version: int, share: float) -> Release:
        return self.save(model, replace(self.get(model), canary=version, canary_share=share))

    def promote(self, model: str) -> Release:
        current = self.get(model)
        if current.canary is None:
            raise ReleaseError(f"{model} has no canary to promote (stable is version {current.stable})")
        return self.save(model, Release(stable=current.canary))

    def rollback(self, model: str) -> Release:
        current = self.get(model)
        if current.canary is not None:
            return self.save(model, Release(stable=current.stable))
        older = [v for v in self.repository.versions(model) if v < current.stable]
        if not older:
            raise ReleaseError(f"{model} version {current.stable} is the oldest; nothing to roll back to")
        return self.save(model, Release(stable=older[-1]))
