from pathlib import Path

import pytest

from inference.model_repository import ModelRepository
from inference.releases import Release, ReleaseError, Releases


@pytest.fixture
def releases(tmp_path: Path) -> Releases:
    for version in (1, 2, 3):
        (tmp_path / "intent" / str(version)).mkdir(parents=True)
    return Releases(ModelRepository(tmp_path))


def test_without_a_release_file_the_newest_version_is_stable(releases: Releases) -> None:
    assert releases.get("intent") == Release(stable=3)
    with pytest.raises(ReleaseError, match="sentiment has no versions"):
        releases.get("sentiment")


def test_canary_assignment_is_sticky_and_close_to_the_share() -> None:
    release = Release(stable=1, canary=2, canary_share=0.2)
    ids = [f"conversation-{i}" for i in range(5000)]
    first = [release.version_for(c) for c in ids]
    assert first == [release.version_for(c) for c in ids]
    assert 0.17 < first.count(2) / len(ids) < 0.23
    wider = Release(stable=1, canary=2, canary_share=0.5)
    assert all(wider.version_for(c) == 2 for c, v in zip(ids, first) if v == 2)  # raising the share only adds


def test_promote_and_rollback(releases: Releases) -> None:
    releases.save("intent", Release(stable=2))
    assert releases.start_canary("intent", 3, 0.1) == Release(2, 3, 0.1)
    assert releases.rollback("intent") == Release(stable=2)
    releases.start_canary("intent", 3, 0.1)
    assert releases.promote("intent") == Release(stable=3)
    assert releases.get("intent") == Release(stable=3)  # persisted
    assert releases.rollback("intent") == Release(stable=2)  # no canary: back to the previous version
    assert releases.rollback("intent") == Release(stable=1)
    with pytest.raises(ReleaseError, match="oldest"):
        releases.rollback("intent")
    with pytest.raises(ReleaseError, match="no canary to promote"):
        releases.promote("intent")


def test_unknown_versions_and_bad_shares_are_refused(releases: Releases) -> None:
    with pytest.raises(ReleaseError, match="no version 9"):
        releases.start_canary("intent", 9, 0.1)
    with pytest.raises(ReleaseError, match="between 0 and 1"):
        releases.start_canary("intent", 2, 1.5)
