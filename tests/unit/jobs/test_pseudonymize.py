from pathlib import Path

import pytest

from jobs.pseudonymize import PseudonymKeyError, Pseudonymizer, load_key


def test_tokens_are_stable_keyed_and_kind_specific() -> None:
    first, again, other = Pseudonymizer(b"k" * 16), Pseudonymizer(b"k" * 16), Pseudonymizer(b"j" * 16)
    token = first.token("customer", "+34612345678")
    assert token == again.token("customer", "+34612345678") and len(token) == 32
    assert token != other.token("customer", "+34612345678")  # another key, another token
    assert token != first.token("agent", "+34612345678")
    assert first.token("customer", None) is None and "k" * 16 not in repr(first)


def test_key_from_file_or_environment(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"a-secret-of-32-bytes-for-tests!!\n")
    assert load_key(path) == b"a-secret-of-32-bytes-for-tests!!"
    monkeypatch.setenv("CENTRALITA_PSEUDONYM_KEY", "another-secret-key")
    assert load_key() == b"another-secret-key"
    monkeypatch.setenv("CENTRALITA_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="shorter than 16 bytes") as error:
        load_key()
    assert "short" not in str(error.value).replace("shorter", "")  # the key itself is never in the message
    with pytest.raises(PseudonymKeyError, match="cannot read the key file"):
        load_key(tmp_path / "missing")
