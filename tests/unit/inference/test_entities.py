import pytest

from inference.entities import entities_of


def labels(text: str) -> list[tuple[str, str]]:
    return [(e.label, e.value) for e in entities_of(text)]


@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está mi pedido 4711-ES?", [("order_number", "4711-ES")]),
    ("order #99812 please", [("order_number", "99812")]),
    ("mi pedido nº 123456 no llega", [("order_number", "123456")]),
    ("ref PED-778812", [("order_number", "PED-778812")]),
    ("tracking 1Z999AA10123456784", [("tracking_number", "1Z999AA10123456784")]),
    ("el envío RR123456785ES", [("tracking_number", "RR123456785ES")]),
    ("me cobrasteis 49,90€ y 12 euros", [("amount", "49,90€"), ("amount", "12 euros")]),
    ("charged $120.50 twice", [("amount", "$120.50")]),
    ("llegó el 15/03/2026, no el 3 de marzo", [("date", "15/03/2026"), ("date", "3 de marzo")]),
    ("since March 3rd, 2026", [("date", "March 3rd, 2026")]),
    ("escribe a ana.lopez@gmail.com", [("email", "ana.lopez@gmail.com")]),
    ("llámame al 612 34 56 78", [("phone", "+34612345678")]),
    ("call +44 20 7946 0958 today", [("phone", "+442079460958")]),
])
def test_entities_are_found_with_their_values(text: str, expected: list) -> None:
    assert labels(text) == expected


def test_spans_point_at_the_text() -> None:
    text = "pedido 4711-ES, correo ana@x.com"
    assert [text[e.start:e.end] for e in entities_of(text)] == ["4711-ES", "ana@x.com"]


@pytest.mark.parametrize("text", ["versión 2.3.1 de la app", "tengo 3 hijos", "el código 00000", "", "🙂"])
def test_look_alikes_and_empty_text_have_no_entities(text: str) -> None:
    assert entities_of(text) == ()
