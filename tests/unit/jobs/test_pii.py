"""Typed masks per PII type in Spanish and English, and look-alikes that must stay."""

import pytest

from jobs.pii import PiiDetector

DETECTOR = PiiDetector(known_names=["Zoe Kravitz"])


@pytest.mark.parametrize("text, masked", [
    ("mi email es maria.lopez@gmail.com", "mi email es <EMAIL>"),
    ("escribeme a juan arroba hotmail punto com", "escribeme a <EMAIL>"),
    ("mail me at john dot smith at gmail dot com", "mail me at <EMAIL>"),
    ("llámame al 612 34 56 78 o al +34 91 123 45 67", "llámame al <PHONE> o al <PHONE>"),
    ("call +44 20 7946 0958", "call <PHONE>"),
    ("mi whatsapp es 34612345678", "mi whatsapp es <PHONE>"),  # country code without '+'
    ("my uk mobile 07911 123456", "my uk mobile <PHONE>"),  # trunk prefix
    ("tarjeta 4111 1111 1111 1111", "tarjeta <CARD>"),
    ("card 5500-0000-0000-0004 please", "card <CARD> please"),
    ("IBAN ES91 2100 0418 4502 0005 1332", "IBAN <IBAN>"),
    ("gb iban GB82WEST12345698765432", "gb iban <IBAN>"),
    ("DNI 12345678Z y NIE X1234567L", "DNI <ID> y NIE <ID>"),
    ("pasaporte PAA123456", "pasaporte <PASSPORT>"),
    ("ip 192.168.1.20 and 2001:db8::1", "ip <IP> and <IP>"),
    ("nací el 15/03/1985", "nací el <DATE_OF_BIRTH>"),
    ("born on March 3, 1990", "born on <DATE_OF_BIRTH>"),
    ("vivo en Calle Mayor 12, 3º B", "vivo en <ADDRESS>"),
    ("I live at 221 Baker Street", "I live at <ADDRESS>"),
    ("me llamo María López", "me llamo <PERSON>"),
    ("my name is bob", "my name is <PERSON>"),
    ("hablé con pedro sanchez ayer", "hablé con <PERSON> ayer"),
    ("Regards,\nJane Doe", "Regards,\n<PERSON>"),
    ("la factura de Zoe", "la factura de <PERSON>"),
])
def test_personal_data_is_masked_with_its_type(text: str, masked: str) -> None:
    assert DETECTOR.mask(text)[0] == masked


@pytest.mark.parametrize("text", [
    "pedido 123456789 y el 12345678A",  # order numbers; wrong DNI control letter
    "tarjeta 4111 1111 1111 1112",  # fails Luhn
    "versión 2.3.1 y la 1.2.3.4.5",  # version strings, not IPs
    "cuesta 19,99 € o 1.299,00 €",  # prices
    "ES12 3456 7890 1234 5678 9012",  # IBAN with a wrong check
    "Mark the order as urgent, please",  # a verb that is also a name
    "soy cliente desde 2019",
    "",
])
def test_look_alikes_stay(text: str) -> None:
    assert DETECTOR.mask(text) == (text, {})


def test_counts_by_type() -> None:
    _, counts = DETECTOR.mask("ana@x.com, bob@y.org, 612 34 56 78")
    assert counts == {"EMAIL": 2, "PHONE": 1}
