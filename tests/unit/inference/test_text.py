from inference.text import MAX_CHARS, clip, decode, fold, has_letters


def test_fold_removes_accents_case_letter_runs_and_digit_values() -> None:
    assert fold("  ¿Dónde   está mi PEDIDO 4711?? Holaaaa ") == "¿donde esta mi pedido 0000?? holaa"


def test_clip_keeps_the_first_max_chars() -> None:
    assert len(clip("x" * (MAX_CHARS * 3))) == MAX_CHARS and clip("corto") == "corto"


def test_invalid_utf8_decodes_to_replacement_characters() -> None:
    assert decode(b"caf\xe9 \xff") == "caf\ufffd \ufffd" and decode("ya texto") == "ya texto"


def test_has_letters_is_false_for_empty_emoji_and_digits() -> None:
    assert not has_letters("") and not has_letters("🙂🙂 👍") and not has_letters("12345 !!")
    assert has_letters("ok 👍") and has_letters("ñ")
