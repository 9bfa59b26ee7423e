import pytest

from inference.sentiment import sentiment_of


@pytest.mark.parametrize("text, label", [
    ("Esto es una vergüenza, servicio pésimo", "negative"),
    ("This is the WORST service ever, I'm furious", "negative"),
    ("Muchas gracias, todo perfecto", "positive"),
    ("great, thanks a lot!", "positive"),
    ("¿Dónde está mi pedido?", "neutral"),
    ("no está mal", "positive"),
    ("not good at all", "negative"),
    ("", "neutral"),
    ("🙂🙂", "neutral"),
])
def test_labels(text: str, label: str) -> None:
    assert sentiment_of(text).label == label


def test_scores_are_bounded_and_intensifiers_count() -> None:
    plain, strong = sentiment_of("malo"), sentiment_of("muy malo malo malo horrible fatal pésimo")
    assert -1.0 <= strong.score <= plain.score <= 1.0 and strong.score == -1.0
