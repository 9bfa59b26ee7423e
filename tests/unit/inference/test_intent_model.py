"""The shipped intent model (the stable version in triton_models/) on utterances written for this test, none
of them in the training seeds, and the save/load round trip."""

from pathlib import Path

import numpy as np
import pytest

from inference.intent_model import Featurizer, IntentModel, read_concepts
from inference.model_repository import ModelRepository
from inference.releases import Releases
from inference.training import fit_intent, fit_language, head
from inference.training_data import Example, read_seeds, DATA_DIR

REPOSITORY = ModelRepository()


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return IntentModel.load(REPOSITORY.version_dir("intent", Releases(REPOSITORY).get("intent").stable))


UNSEEN = [  # written for this test; none of them is a training seed (checked below)
    ("oye, mi paquete sigue sin salir del almacén?", "order_status", "es"),
    ("when is my stuff gonna arrive", "order_status", "en"),
    ("kiero anular la compra q hice antes de ayer", "cancel_order", "es"),
    ("pls cancel the order i placed an hour ago", "cancel_order", "en"),
    ("me llego el movil con la pantalla rota", "delivery_problem", "es"),
    ("the parcel showed up soaked and the box was ripped", "delivery_problem", "en"),
    ("necesito hablar con alguien de carne y hueso", "human_agent", "es"),
    ("can i chat with an actual human being", "human_agent", "en"),
    ("no me dejan meter la tarjeta, da error todo el rato", "payment_failed", "es"),
    ("checkout keeps saying transaction failed", "payment_failed", "en"),
    ("quiero que borreis todo lo que teneis sobre mi", "privacy_request", "es"),
    ("please erase every bit of personal info you store about me", "privacy_request", "en"),
    ("todavia no me habeis devuelto la pasta de las botas", "refund_status", "es"),
    ("yo i still havent got my refund for the returned shoes", "refund_status", "en"),
    ("como mando de vuelta unos pantalones que no me valen", "return_request", "es"),
    ("can u send me a return label for the jacket", "return_request", "en"),
    ("me he mudado, actualizad la direccion de envio porfa", "change_address", "es"),
    ("i moved house, pls update the delivery address", "change_address", "en"),
    ("por que me habeis cobrado 2 veces este mes", "billing_question", "es"),
    ("i was billed 2x this month??", "billing_question", "en"),
    ("no puedo entrar, me dice que la clave es incorrecta", "account_access", "es"),
    ("locked out of my acount, password reset not working", "account_access", "en"),
    ("la sudadera gris la teneis en talla XL?", "product_question", "es"),
    ("does the hoodie come in XL", "product_question", "en"),
    ("sois un desastre, nunca me contestais, estoy indignada", "complaint", "es"),
    ("worst customer service ever, absolutely ridiculous", "complaint", "en"),
    ("buenas tardes!", "greeting", "es"),
    ("hey hi there", "greeting", "en"),
    ("gracias por todo, muy amables", "thanks", "es"),
    ("cheers mate, appreciate it", "thanks", "en"),
    ("hasta luego, buen dia", "goodbye", "es"),
    ("ok bye now", "goodbye", "en"),
]


def test_unseen_utterances_are_mostly_understood(model: IntentModel) -> None:
    """Held-out quality on fresh text: the model card reports ~0.91 per language; demand 0.85 here."""
    predictions = model.predict([text for text, _, _ in UNSEEN])
    wrong = [(text, p.intent) for (text, intent, _), p in zip(UNSEEN, predictions) if p.intent != intent]
    assert len(wrong) <= 0.15 * len(UNSEEN), wrong
    assert [p.language for p in predictions] == [language for _, _, language in UNSEEN]
    assert all(0.0 < p.confidence <= 1.0 for p in predictions if p.intent)


def test_unseen_utterances_are_not_training_seeds() -> None:
    seeds = {text.lower() for lang in ("es", "en") for _, text in read_seeds(DATA_DIR / f"intents_{lang}.txt", lang)}
    assert not seeds & {text for text, _, _ in UNSEEN}


def test_text_without_letters_has_no_intent_and_other_languages_are_und(model: IntentModel) -> None:
    empty, emoji, german, french = model.predict(["", "🙂🙂🙂", "Ich möchte meine Bestellung stornieren bitte",
                                                   "Bonjour, je voudrais parler à quelqu'un"])
    assert (empty.intent, empty.confidence, empty.language) == (None, 0.0, None)
    assert (emoji.intent, emoji.language) == (None, None)
    assert (german.intent, german.language) == (None, "und") and (french.intent, french.language) == (None, "und")


def test_keyboard_mashes_and_small_talk_have_no_intent(model: IntentModel) -> None:
    predictions = model.predict(["asdf", "hmm qwerty", "jkjkjk lkj", "tell me a joke about cats", "¿quién ganará la liga?"])
    assert [p.intent for p in predictions] == [None] * 5


def test_probabilities_are_a_distribution(model: IntentModel) -> None:
    probs = model.probabilities(["hola", "where is my order", "x" * 10_000])
    assert probs.shape == (3, 17) and np.allclose(probs.sum(axis=1), 1.0)


def test_save_and_load_give_the_same_predictions(tmp_path: Path) -> None:
    examples = [Example(t, i, l, n) for n, (t, i, l) in enumerate([
        ("hola buenas", "greeting", "es"), ("hello there", "greeting", "en"), ("quiero cancelar", "cancel_order", "es"),
        ("cancel my order", "cancel_order", "en"), ("gracias", "thanks", "es"), ("thank you", "thanks", "en")])]
    features = Featurizer(read_concepts())
    model = IntentModel(head(fit_intent(features, examples)), head(fit_language(features, examples)), 0.8, features, {"note": "t"})
    model.save(tmp_path)
    loaded = IntentModel.load(tmp_path)
    texts = ["hola, quiero cancelar", "thanks!", "buenas"]
    assert [p.intent for p in loaded.predict(texts)] == [p.intent for p in model.predict(texts)]
    assert np.allclose(loaded.probabilities(texts), model.probabilities(texts), atol=2e-3)  # half-precision weights on disk
    assert loaded.metadata == {"note": "t"}
