"""The local stack: the real components Centralita runs against, brought up and down together.

The Kafka broker, the Salesforce emulator, Triton Inference Server and Prometheus (scraping all of them, with the
alerting rules loaded; optional, when Debian's prometheus is installed). Components
start in order and stop in reverse order, so a consumer never outlives what it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inference.triton_server import TritonServer
from infra.kafka_broker import KafkaBroker
from infra.prometheus_server import PrometheusServer
from infra.salesforce_emulator import SalesforceEmulator
from infra.settings import Settings


class Component(Protocol):
    """What the stack needs of a component: start, stop and describe itself, each idempotent."""

    def start(self) -> str: ...

    def stop(self) -> str: ...

    def status(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Stack:
    components: tuple[Component, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> "Stack":
        return cls(components=(KafkaBroker.from_settings(settings), SalesforceEmulator.from_settings(settings),
                               TritonServer.from_settings(settings), PrometheusServer.from_settings(settings)))

    def up(self) -> list[str]:
        return [component.start() for component in self.components]

    def down(self) -> list[str]:
        return [component.stop() for component in reversed(self.components)]

    def status(self) -> list[dict[str, str]]:
        return [component.status() for component in self.components]
