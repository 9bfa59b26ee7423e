"""Typed settings for every Centralita process, read from ``CENTRALITA_*`` environment variables.

One frozen settings object per process. The defaults run the local stack started by
``centralita stack up``, so nothing has to be configured on a developer machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The checkout this package lives in (editable install): home of `triton_models/`, `tests/bench/`, ...
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Configuration of one process. Every field maps to ``CENTRALITA_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="CENTRALITA_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (host:port[,host:port])."
    )
    state_dir: Path = Field(
        PROJECT_ROOT / ".centralita",
        description="Where the local stack keeps its data, logs and pid files.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "centralita",
        description="Downloads shared by every checkout (the Kafka broker jars).",
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT (local stack), SSL, SASL_PLAINTEXT or SASL_SSL (production: SASL_SSL)."
    )
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512", description="SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.")
    kafka_sasl_username: str = Field("", description="SASL user of this component (one per component: ACLs are per user).")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (or CENTRALITA_KAFKA_SASL_PASSWORD_FILE).")
    kafka_sasl_password_file: Path | None = Field(None, description="File holding the SASL password (a mounted secret).")
    kafka_ssl_ca_file: Path | None = Field(None, description="PEM CA bundle that signed the brokers' certificates (SSL, SASL_SSL).")
    kafka_ssl_cert_file: Path | None = Field(None, description="PEM client certificate, for brokers that require mutual TLS.")
    kafka_ssl_key_file: Path | None = Field(None, description="PEM private key of the client certificate.")
    kafka_version: str = Field("4.1.1", description="Apache Kafka release the local broker runs.")
    kafka_port: int = Field(9092, description="Local broker's client port on 127.0.0.1.")
    kafka_controller_port: int = Field(9093, description="Local broker's KRaft controller port.")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker (-Xmx).")
    kafka_start_timeout_s: float = Field(60.0, description="How long `stack up` waits for the broker.")
    app_id: str = Field("centralita", description="Faust application id (consumer group prefix).")
    broker_session_timeout_s: float = Field(
        8.0, description="Worker consumer session timeout: how long a killed worker's partitions wait before the group moves them (the broker's minimum is 6)."
    )
    auto_offset_reset: str = Field("earliest", description="Where a new consumer group starts: earliest (nothing missed) or latest (benchmarks).")
    bind_host: str = Field("127.0.0.1", description="Address the HTTP servers (worker web, gateway, metrics) listen on; 0.0.0.0 in a container.")
    worker_web_port: int = Field(6066, description="Faust worker's web server (metrics, health).")
    store: str = Field("rocksdb://", description="Faust table store of the worker: rocksdb:// (rocksdict, under the state dir), or memory:// (every restart reads the whole changelog).")
    rocksdb_write_buffer_bytes: int = Field(8 * 1024 * 1024, ge=1024 * 1024, description="RocksDB memtable size per table partition (Faust's default, 64 MiB x 3, is per partition too).")
    rocksdb_block_cache_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, description="RocksDB block cache per table partition (Faust's default is 2 GiB).")
    partitions: int = Field(6, ge=1, description="Partitions of every topic the workers read or write (raw channel topics, conversation.*, crm.*) and of their tables: the most workers that share the traffic. Set before the topics are created.")
    dedupe_days: float = Field(7.0, gt=0, description="How long a provider message id is remembered (providers redeliver for days); then it is tombstoned.")
    session_retention_days: float = Field(7.0, gt=0, description="How long a closed session is kept (a returning customer resumes it, a CSAT answer finds it); then it is tombstoned.")
    changelog_segment_ms: int = Field(3_600_000, ge=1000, description="Segment roll of the tables' changelog topics: how soon compaction can drop overwritten and tombstoned records.")
    changelog_delete_retention_ms: int = Field(86_400_000, ge=0, description="How long tombstones stay on the changelogs after compaction (a slower reader still sees the delete).")
    routing_policy_file: Path | None = Field(None, description="Routing policy TOML (default: streams/routing_policy.toml); reloaded on change.")
    worker_gc_threshold: int = Field(50_000, description="Allocations between the worker's young-generation GC runs (Python's default is 700).")
    consumer_fetch_max_wait_s: float = Field(0.02, description="Longest the broker holds a worker's fetch waiting for data (Faust's own is 1.5 s).")
    producer_linger_s: float = Field(0.001, description="How long the worker's producer waits to batch records: a batch's state is awaited before its replies go out, so every millisecond here is a reply's.")
    engine_batch_size: int = Field(64, description="Most inbound records the engine takes in one batch (one inference call, one state write).")
    engine_batch_wait_s: float = Field(0.02, description="Longest wait to fill a batch.")
    session_sweep_interval_s: float = Field(30.0, gt=0, description="How often the worker looks for timers that fell due: idle sessions to close, expired dedupe ids, closed sessions and identities past retention.")
    gateway_port: int = Field(8080, description="Webhook gateway port.")
    gateway_publish_timeout_s: float = Field(10.0, description="How long the gateway waits for Kafka before answering 503.")
    gateway_max_body_bytes: int = Field(1_048_576, description="Largest webhook body the gateway accepts (413 above).")
    meta_app_secret: SecretStr = Field(SecretStr(""), description="Meta app secret for X-Hub-Signature-256 (WhatsApp, Messenger, Instagram).")
    meta_verify_token: SecretStr = Field(SecretStr(""), description="Token Meta sends in the GET verification handshake.")
    twilio_auth_token: SecretStr = Field(SecretStr(""), description="Twilio auth token for X-Twilio-Signature.")
    relay_secret: SecretStr = Field(SecretStr(""), description="HMAC shared secret of the web chat widget and email relay.")
    public_base_url: str = Field("", description="Public URL of the gateway as providers call it (Twilio signs the full URL).")

    # -- Triton Inference Server and the inference client --
    triton_http_port: int = Field(8000, description="Local Triton's HTTP port on 127.0.0.1 (health, model control).")
    triton_grpc_port: int = Field(8001, description="Local Triton's gRPC port on 127.0.0.1 (inference).")
    triton_metrics_port: int = Field(8002, description="Local Triton's Prometheus metrics port on 127.0.0.1.")
    triton_url: str = Field("", description="Triton gRPC address the inference client calls (default: the local Triton's gRPC port).")
    triton_model_repository: Path = Field(PROJECT_ROOT / "triton_models", description="Model repository Triton serves and `train` writes to.")
    triton_config_name: str = Field("", description="Triton --model-config-name: empty for config.pbtxt (CPU), `gpu` for configs/gpu.pbtxt.")
    triton_start_timeout_s: float = Field(120.0, description="How long `stack up` waits for Triton to load the models.")
    nlu_backend: str = Field("triton", description="What the engine asks: `triton` (the client below) or `rules` (the rule-based stand-in).")
    nlu_timeout_s: float = Field(0.5, description="Deadline of one inference call to Triton (per attempt).")
    nlu_attempts: int = Field(2, description="Attempts per inference call before the fallback answers.")
    nlu_max_batch: int = Field(64, description="Client micro-batching: most texts sent to Triton in one request.")
    nlu_max_wait_s: float = Field(0.003, description="Client micro-batching: longest a text waits for others to join its request.")
    nlu_breaker_failures: int = Field(5, description="Consecutive failed calls that open the circuit breaker.")
    nlu_breaker_reset_s: float = Field(10.0, description="How long the breaker stays open before one trial call.")
    canary_share: float = Field(0.1, description="Share of conversations a new model version gets when `train` makes it the canary.")

    # -- monitoring --
    prometheus_port: int = Field(9090, description="Port of the local stack's Prometheus (when Debian's prometheus is installed).")
    prometheus_scrape_interval_s: float = Field(5.0, description="Scrape and rule evaluation interval of the local Prometheus.")

    # -- Salesforce (the CRM sink, and the local emulator that stands in for an org) --
    sf_host: str = Field("http://127.0.0.1:8085", description="Salesforce instance URL (the emulator locally).")
    sf_login_url: str = Field("http://127.0.0.1:8085", description="Where OAuth tokens are requested.")
    sf_api_version: str = Field("59.0", description="Bulk API version in the endpoint path.")
    sf_auth_flow: str = Field("client_credentials", description="OAuth flow of the sink: client_credentials or jwt.")
    sf_client_id: str = Field("centralita-dev-client", description="Connected app consumer key (development default).")
    sf_client_secret: SecretStr = Field(SecretStr("centralita-dev-only"), description="Connected app consumer secret (development default; set it in production).")
    sf_username: str = Field("integration@centralita.dev", description="Integration user (JWT subject, SOAP login).")
    sf_password: SecretStr = Field(SecretStr("centralita-dev-only"), description="Integration user's password, for the emulator's SOAP login.")
    sf_jwt_key_file: Path | None = Field(None, description="PEM private key the sink signs JWT bearer assertions with.")
    sf_jwt_public_key_file: Path | None = Field(None, description="PEM public key the emulator verifies JWT assertions with.")
    sf_emulator_port: int = Field(8085, description="Port of the local Salesforce emulator on 127.0.0.1.")
    sf_session_ttl_s: float = Field(7200.0, description="Emulator: lifetime of a session before INVALID_SESSION_ID.")
    crm_batch_max_records: int = Field(2000, description="CRM sink: most case events per Bulk job.")
    crm_batch_max_wait_s: float = Field(2.0, description="CRM sink: longest wait to fill a job before sending it.")
    crm_poll_interval_s: float = Field(0.2, description="CRM sink: how often batch results are polled.")
    crm_max_attempts: int = Field(6, description="CRM sink: attempts per job on transient failures (backoff between).")
    crm_group_id: str = Field("centralita-crm-sink", description="CRM sink consumer group.")
    crm_metrics_port: int = Field(9465, description="CRM sink: port of its Prometheus /metrics.")


    @property
    def kafka_password(self) -> str:
        """The SASL password: from its file when one is given (Kubernetes secrets are files), else the variable."""
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text(encoding="utf-8").strip()
        return self.kafka_sasl_password.get_secret_value()

    @property
    def triton_address(self) -> str:
        """Where the inference client finds Triton: CENTRALITA_TRITON_URL, else the local stack's gRPC port."""
        return self.triton_url or f"127.0.0.1:{self.triton_grpc_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
