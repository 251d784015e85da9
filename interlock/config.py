"""The `mitm_config.yaml` file: pydantic models, defaults and a loader with clear errors.

`load_config(path)` returns a validated `InterlockConfig` or raises `ConfigError` whose
message names the offending key (e.g. `providers.0.routes.1.dialect`), so the addon can
refuse start-up with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from interlock.alerts.expression import RATIO_AGGREGATES, Condition, parse_condition
from interlock.dialects import DIALECTS
from interlock.replay_match import DEFAULT_IGNORED_PATHS, PathPattern, PathPatternError
from interlock.windows import Window, parse_duration, parse_window


class StrictModel(BaseModel):
    """A model that rejects unknown keys, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class Route(StrictModel):
    """A path on a provider host and the wire format spoken there.

    `path` matches the request path without its query string; `*` matches any run of
    characters (for Azure's `/openai/deployments/*/chat/completions`).
    """

    path: str
    dialect: str

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if value not in DIALECTS:
            raise ValueError(f"unknown dialect {value!r}; known: {', '.join(sorted(DIALECTS))}")
        return value


class Provider(StrictModel):
    """A provider: host names (with optional `*` globs) and the LLM routes on them."""

    name: str
    hosts: list[str] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)
    # Its `gen_ai.provider.name` in the OTLP export (docs/opentelemetry.md); default: `name`.
    otel_name: str | None = None


def default_providers() -> list[Provider]:
    """Every dialect's default providers, merged by provider name in registry order
    (one provider may speak several dialects, on different paths)."""
    merged: dict[str, Provider] = {}
    for dialect in DIALECTS.values():
        for default in dialect.default_providers:
            routes = [Route(path=path, dialect=dialect.name) for path in default.paths]
            known = merged.get(default.name)
            if known is None:
                merged[default.name] = Provider(
                    name=default.name, hosts=list(default.hosts), routes=routes, otel_name=default.otel_name
                )
            else:
                known.hosts += [host for host in default.hosts if host not in known.hosts]
                known.routes += routes
    return list(merged.values())


class RecorderConfig(StrictModel):
    """Where and how calls are recorded."""

    database: str = "interlock.db"
    queue_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=200, ge=1)
    # Calls older than this many days are pruned (with everything recorded about them) at
    # start-up and every `retention_interval_s` after; None keeps everything (docs/team.md).
    retention_days: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    retention_interval_s: float = Field(default=3600.0, ge=1, allow_inf_nan=False)
    # Where pruned calls are copied before they are deleted (another SQLite file); None: deleted only.
    retention_archive: str | None = None


class UpstreamConfig(StrictModel):
    """How long a provider may stay silent: no byte for `idle_timeout_s` seconds, before
    its first byte or between two, and the call is answered with the dialect's error."""

    idle_timeout_s: float = Field(default=600.0, gt=0, allow_inf_nan=False)


class KeepaliveConfig(StrictModel):
    """While a policy holds a stream (a judge deciding), the client gets the dialect's
    keepalive (an SSE comment, Anthropic's ping; a WebSocket ping) once it has had
    nothing for `interval_s` seconds, so neither it nor a middlebox drops the connection.
    Never sent in a stream nothing holds."""

    interval_s: float = Field(default=10.0, ge=1, le=3600, allow_inf_nan=False)


class SessionConfig(StrictModel):
    """How calls are grouped into agent sessions."""

    header: str | None = "x-interlock-session"


class TagsConfig(StrictModel):
    """Per-user and per-project tags on every call (docs/team.md). `user` is the proxy-auth
    user name when the proxy requires one (`--proxyauth`), else `user_header`'s value;
    `project` is `project_header`'s value. With `strip_headers` (the default) both headers
    are removed before a matched call goes upstream. None turns a header off."""

    user_header: str | None = "x-interlock-user"
    project_header: str | None = "x-interlock-project"
    strip_headers: bool = True


class ReplayConfig(StrictModel):
    """How a replayed request is matched to a cassette's calls (docs/replay.md): the
    request body paths left out of the comparison (`ignore_paths` replaces the defaults,
    `extra_ignore_paths` adds to them). Read once, at start-up."""

    ignore_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_IGNORED_PATHS))
    extra_ignore_paths: list[str] = Field(default_factory=list)

    @field_validator("ignore_paths", "extra_ignore_paths")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                PathPattern.parse(text)
            except PathPatternError as error:
                raise ValueError(str(error)) from None
        return value

    def ignored(self) -> list[str]:
        return [*self.ignore_paths, *self.extra_ignore_paths]


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class OtelConfig(StrictModel):
    """The OTLP export of every call as OpenTelemetry GenAI spans and metrics
    (docs/opentelemetry.md). Off unless an endpoint is given here, by the
    `interlock_otlp_endpoint` option (which wins), or by the standard
    `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables.
    `endpoint` is the collector's base URL (`/v1/traces` and `/v1/metrics` are added, as
    for `OTEL_EXPORTER_OTLP_ENDPOINT`); `headers` replace `OTEL_EXPORTER_OTLP_HEADERS`.
    Message content goes out only with `capture_content`, scrubbed as in the database."""

    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    capture_content: bool = False
    service_name: str = "interlock"
    metrics: bool = True
    metrics_interval_s: float = Field(default=60.0, ge=1, allow_inf_nan=False)
    max_queue_size: int = Field(default=2048, ge=1)
    shutdown_timeout_s: float = Field(default=5.0, gt=0, le=60, allow_inf_nan=False)

    _url = field_validator("endpoint")(_http_url)


Duration = Annotated[str, BeforeValidator(lambda v: _duration(str(v)))]
AlertChannel = Literal["terminal", "webhook", "desktop"]
AlertScope = Literal["session", "model", "client", "user", "project", "overall"]


class WebhookConfig(StrictModel):
    """Alerts POSTed as JSON to `url` from a background thread (docs/alerts.md): each
    tried `1 + retries` times, waiting `backoff_s`, then twice as long each time; at
    most `queue_size` waiting, the rest dropped (counted, logged)."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=5.0, gt=0, le=120, allow_inf_nan=False)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=1.0, gt=0, le=300, allow_inf_nan=False)
    queue_size: int = Field(default=100, ge=1)

    _url = field_validator("url")(_http_url)


class AlertChannelsConfig(StrictModel):
    """Where alerts go besides the `alerts` table (which gets every alert)."""

    terminal: bool = True
    webhook: WebhookConfig | None = None
    desktop: bool = False  # notify-send (Linux) or osascript (macOS), when one is there

    def configured(self) -> list[AlertChannel]:
        names: list[AlertChannel] = []
        if self.terminal:
            names.append("terminal")
        if self.webhook is not None:
            names.append("webhook")
        if self.desktop:
            names.append("desktop")
        return names


class AlertRule(StrictModel):
    """`when` holds over `window` of the calls of one `per` scope key: an alert, once per
    episode and cool-down (docs/alerts.md)."""

    name: str = Field(min_length=1)
    when: Annotated[Condition, BeforeValidator(parse_condition)]
    window: str = "1h"
    per: AlertScope = "overall"
    channels: list[AlertChannel] | None = None  # default: every configured channel
    cooldown: Duration | None = None  # default: the section's `cooldown`
    # Fewest calls in the window (with the metric known) before the rule is evaluated;
    # default 5 for avg and rate, 1 for the others.
    min_calls: int | None = Field(default=None, ge=1)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @property
    def parsed_window(self) -> Window:
        return parse_window(self.window)

    @property
    def least_calls(self) -> int:
        if self.min_calls is not None:
            return self.min_calls
        return 5 if self.when.aggregate in RATIO_AGGREGATES else 1


class AlertsConfig(StrictModel):
    """Alert rules over the ended calls, and policy events with action `warned` (a
    budget's warning) as alerts too (`policy_warnings`). Reloaded live: the running
    totals of the rules whose name, `when`, `window`, `per` and `min_calls` did not
    change are kept."""

    cooldown: Duration = "15m"
    policy_warnings: bool = True
    channels: AlertChannelsConfig = Field(default_factory=AlertChannelsConfig)
    rules: list[AlertRule] = Field(default_factory=list)

    @property
    def cooldown_s(self) -> float:
        return parse_duration(self.cooldown)

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfig:
        configured = self.channels.configured()
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules.{index}.name: {rule.name!r} is used by an earlier rule")
            seen.add(rule.name)
            missing = [name for name in rule.channels or () if name not in configured]
            if missing:
                raise ValueError(f"rules.{index}.channels: {', '.join(missing)} not configured under alerts.channels")
        return self


class PolicyEntry(BaseModel):
    """One entry of the policy chain; its remaining keys are the policy's own options."""

    model_config = ConfigDict(extra="allow")

    policy: str
    on_error: Literal["allow", "block"] = "allow"
    timeout_s: float = Field(default=5.0, gt=0)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class InterlockConfig(StrictModel):
    """The whole configuration file."""

    providers: list[Provider] = Field(default_factory=default_providers)
    extra_providers: list[Provider] = Field(default_factory=list)
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    tags: TagsConfig = Field(default_factory=TagsConfig)
    otel: OtelConfig = Field(default_factory=OtelConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    keepalive: KeepaliveConfig = Field(default_factory=KeepaliveConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    policies: list[PolicyEntry] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    # A provider's WebSocket transport (Codex's Responses WebSocket): `police` runs the
    # policies on it, `pass` records it and alters nothing, `refuse` answers the upgrade
    # with HTTP 426 (Codex then uses HTTP+SSE for the session).
    responses_websocket: Literal["pass", "police", "refuse"] = "police"

    def all_providers(self) -> list[Provider]:
        return [*self.providers, *self.extra_providers]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key."""


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem: `key.path: message`."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        lines.append(f"{prefix}{key}: {problem['msg']}")
    return "; ".join(lines)


def parse_config(data: Any, source: str = "config") -> InterlockConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        return InterlockConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error)}") from None


def load_config(path: str | Path) -> InterlockConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return parse_config(data, str(path))
