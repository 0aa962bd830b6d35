"""Typed configuration: one TOML file, validated with pydantic, secrets taken from the environment."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from syncd.errors import ConfigError, Problem
from syncd.systems import REGISTRY, load_object, registration
from syncd.tomlsource import TomlSource, TomlSyntaxError, format_key_path

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: What a command needs from the environment: every reference resolved (`all`, the default: syncing, the daemon,
#: `check-config`), or only those of the sections a command on the store alone uses (`store`: `links`,
#: `conflicts`, `inbox`, `deadletters`, `audit`, `db`), which must not demand connection secrets they never use.
SettingsScope = Literal["all", "store"]
_SCOPE_SECTIONS: dict[str, frozenset[str] | None] = {
    "all": None,
    "store": frozenset({"store", "logging", "mappings"}),  # the mappings name the objects links are kept under
}


class _Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Strict):
    """Where syncd keeps links, cursors, tokens and reports."""

    url: str = "sqlite:///syncd.db"


class SecuritySettings(_Strict):
    """The key that encrypts OAuth tokens at rest: given directly (from the environment) or as a key file."""

    token_key: SecretStr | None = None
    token_key_file: Path | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> SecuritySettings:
        if self.token_key is not None and self.token_key_file is not None:
            raise ValueError("give either token_key or token_key_file, not both")
        return self

    def key_bytes(self) -> bytes | None:
        """The encryption key, read from the setting or the key file; None when neither is set."""
        if self.token_key is not None:
            return self.token_key.get_secret_value().encode()
        if self.token_key_file is not None:
            return self.token_key_file.read_bytes().strip()
        return None


class LoggingSettings(_Strict):
    """How syncd logs: level and format (JSON lines off a terminal, readable on one, when `auto`)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ListenerSettings(_Strict):
    """An HTTP listener's address."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The longest a client may take to send a request (headers and body) or stay idle between requests.
    read_timeout_s: float = Field(default=30.0, gt=0)


class WebhookSettings(ListenerSettings):
    """The webhook receiver; `public_url` is the address the systems are told to call."""

    public_url: str | None = None
    # Processed inbox events are kept this long, then deleted. While kept, a redelivery is recognised as a copy;
    # beyond the longest freshness window of a connector (72 h) a redelivery is refused as stale anyway, so at
    # least 3 days.
    keep_processed_days: float = Field(default=7.0, ge=3)


class AdminSettings(ListenerSettings):
    """The admin listener (API, health, metrics, conflict review pages); `token` guards the API (Bearer) and
    the pages (its login); health, readiness and metrics stay open."""

    port: int = Field(default=8081, ge=0, le=65535)
    token: SecretStr | None = None


class NotificationSettings(_Strict):
    """Outgoing notifications: a POST signed with `secret` (HMAC-SHA256) to `url` when a conflict is opened, a
    connection needs re-authorisation or a record is parked; none when `url` is not set."""

    url: str | None = None
    secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _signed_http_url(self) -> NotificationSettings:
        if self.url is None:
            return self
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be an http:// or https:// URL")
        if self.secret is None or not self.secret.get_secret_value():
            raise ValueError("secret is required with url: every notification is signed with it")
        return self


class PollingSettings(_Strict):
    """Default polling schedule; each connection may override the interval."""

    interval_s: float = Field(default=60.0, gt=0)
    overlap_s: float = Field(default=120.0, ge=0)
    # How often deletions are listed by poll where a system lists them only whole (a CRM's archived records or
    # its deleted-records call); webhooks bring them at once, merges come with the changes.
    deletion_sweep_s: float = Field(default=3600.0, ge=0)


class ReportSettings(_Strict):
    """What a pass's report holds in full (every action is counted; the audit log has every write)."""

    # The first actions of a pass listed with their field changes (and as many refused writes after them).
    kept_actions: int = Field(default=200, ge=0)


class DaemonSettings(_Strict):
    """How `syncd run` behaves as a service."""

    # After SIGTERM, work in progress gets this long to finish; calls still waiting on a system are then
    # cancelled (their changes are read again next time) and the process exits.
    stop_grace_s: float = Field(default=10.0, gt=0)


class MappingsSettings(_Strict):
    """Which mapping files are active (paths relative to the config file)."""

    active: list[Path] = Field(default_factory=list)


class RateLimitSettings(_Strict):
    """A connection's budget: calls per window and per day (defaults are the system's documented limits), the
    share of the daily cap left to the account's other integrations, and the day the cap is counted in."""

    window_s: float = Field(gt=0)
    window_max: int = Field(gt=0)
    daily_cap: int | None = Field(default=None, gt=0)
    # syncd never spends more than (1 - reserve_share) x daily_cap in a day.
    reserve_share: float = Field(default=0.2, ge=0, lt=1)
    # Of syncd's part, what polling leaves to webhook-driven work (so a long first sync never starves it).
    webhook_share: float = Field(default=0.05, ge=0, lt=1)
    # The time zone whose midnight resets the daily cap (the account's, or UTC, as the system counts); a system
    # counting a rolling 24 hours ignores it.
    day_timezone: str = "UTC"

    @field_validator("day_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("a time zone name such as UTC or Europe/Berlin") from None
        return value


class ConnectionBase(_Strict):
    """What every connection has, whatever the system; each system's own model (named by its registration in
    `syncd.systems`) derives from it and narrows `system` to its name. Fields typed `Path` are files, read
    relative to the config file and checked to exist."""

    system: str
    enabled: bool = True
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr | None = None
    poll_interval_s: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=8, gt=0, le=64)
    rate_limit: RateLimitSettings | None = None
    # Where a person opens a record in the system's own UI, by system object: a URL with `{id}` in it, e.g.
    # contacts = "https://crm.example.com/contacts/{id}". The review page links to them.
    record_urls: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _record_urls_take_an_id(self) -> ConnectionBase:
        for obj, url in self.record_urls.items():
            if not url.startswith(("http://", "https://")) or "{id}" not in url:
                raise ValueError(f"record_urls.{obj} must be an http(s) URL containing {{id}}")
        return self


class Settings(_Strict):
    """The whole configuration of one syncd instance."""

    store: StoreSettings = StoreSettings()
    security: SecuritySettings = SecuritySettings()
    logging: LoggingSettings = LoggingSettings()
    webhooks: WebhookSettings = WebhookSettings()
    admin: AdminSettings = AdminSettings()
    notifications: NotificationSettings = NotificationSettings()
    polling: PollingSettings = PollingSettings()
    report: ReportSettings = ReportSettings()
    daemon: DaemonSettings = DaemonSettings()
    mappings: MappingsSettings = MappingsSettings()
    # Each table is validated by the model its `system`'s registration names (see `_connections_by_system`).
    connections: dict[str, ConnectionBase] = Field(default_factory=dict)
    # Keys whose `${NAME}` was left as written, its variable unset, because the scope loaded did not need them.
    _unresolved: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _connections_by_system(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        """Validate each connection with its system's registered model (a registry lookup, not a fixed union, so
        that a registered system is accepted with no edit here); its errors join the other sections' errors."""
        if not isinstance(data, Mapping) or not isinstance(data.get("connections"), Mapping):
            return handler(data)
        problems: list[InitErrorDetails] = []
        connections: dict[str, Any] = {}
        for name, table in data["connections"].items():
            if isinstance(table, ConnectionBase) or not isinstance(table, Mapping):
                connections[name] = table  # a model already (built in code), or not a table: the field says so
                continue
            model = connection_model(table.get("system"))
            if model is None:
                problems.append(InitErrorDetails(
                    type=PydanticCustomError("system_unknown", "`system` must be one of: {known}",
                                             {"known": ", ".join(REGISTRY)}),
                    loc=("connections", name), input=table,
                ))
                continue
            try:
                connections[name] = model.model_validate(table)
            except ValidationError as exc:
                problems.extend(_nested(exc, ("connections", name)))
        try:
            settings = handler({**data, "connections": connections})
        except ValidationError as exc:
            if not problems:
                raise
            raise ValidationError.from_exception_data(cls.__name__, [*_nested(exc, ()), *problems]) from None
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return settings

    @property
    def unresolved(self) -> frozenset[str]:
        """Key paths (`connections.hub.client_secret`) still holding an unset `${NAME}`: empty unless loaded with
        a narrower scope than `all`; such settings must not be used for what those keys configure."""
        return self._unresolved

    def secret_values(self) -> list[str]:
        """Every secret value in this configuration, so logging can redact them."""
        found: list[str] = []

        def walk(value: object) -> None:
            if isinstance(value, SecretStr):
                if secret := value.get_secret_value():
                    found.append(secret)
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    walk(getattr(value, name))
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(self)
        return found


def connection_model(system: object) -> type[ConnectionBase] | None:
    """The settings model of a registered system (None for anything else)."""
    if not isinstance(system, str) or system not in REGISTRY:
        return None
    model = load_object(registration(system).settings)
    assert isinstance(model, type) and issubclass(model, ConnectionBase), f"{system}: settings is no ConnectionBase"
    return model


def _nested(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[InitErrorDetails]:
    """`exc`'s errors, located under `prefix`, to be raised again with others (type, message and input kept)."""
    return [InitErrorDetails(type=PydanticCustomError(err["type"], err["msg"]),
                             loc=(*prefix, *err["loc"]), input=err["input"])
            for err in exc.errors(include_url=False)]


def load_settings(
    path: Path | str, env: Mapping[str, str] | None = None, *, scope: SettingsScope = "all"
) -> Settings:
    """Load and check the config file; raise `ConfigError` listing every problem found.

    The whole file is always checked (keys, types, files); with `scope="store"` an unset `${NAME}` outside the
    sections that scope uses is not a problem: it stays as written, its key listed in `Settings.unresolved`."""
    path = Path(path)
    environ = os.environ if env is None else env
    try:
        source = TomlSource.read(path)
    except TomlSyntaxError as exc:
        raise ConfigError([exc.problem]) from exc
    problems: list[Problem] = []
    unresolved: set[str] = set()
    data = _resolve_env(source.data, (), _EnvResolution(source, environ, _SCOPE_SECTIONS[scope], problems,
                                                        unresolved))
    data = _with_listen_host(data, environ.get(LISTEN_HOST_ENV) or None)
    data = _resolve_paths(data, path.parent, Path(environ[DATA_DIR_ENV]) if environ.get(DATA_DIR_ENV) else None)
    settings = _validated(data, source, problems, unresolved)
    sections = _SCOPE_SECTIONS[scope]
    if settings is None and not problems and sections is not None:
        # Only values left as `${NAME}` failed (one may not have its key's type: a port, an id): what the
        # scope uses is valid, so the settings hold just that.
        settings = _validated({k: v for k, v in data.items() if k in sections}, source, problems, unresolved)
    if settings is not None:
        problems.extend(_check_files(settings, source, unresolved))
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.key_path))
        raise ConfigError(problems)
    assert settings is not None
    settings._unresolved = frozenset(unresolved)
    return settings


def _validated(data: dict[str, Any], source: TomlSource, problems: list[Problem], unresolved: set[str]
               ) -> Settings | None:
    """`data` as Settings, or None with its problems added (except at keys left `unresolved`)."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _translate(exc, source) if p.key_path not in unresolved)
        return None


class _EnvResolution:
    """How `${NAME}` references are resolved in one load: from `env`, problems noted for the sections in scope
    (`sections`, None for all), references elsewhere whose variable is unset left as written and noted."""

    def __init__(self, source: TomlSource, env: Mapping[str, str], sections: frozenset[str] | None,
                 problems: list[Problem], unresolved: set[str]) -> None:
        self.source, self.env, self.sections = source, env, sections
        self.problems, self.unresolved = problems, unresolved

    def substitute(self, text: str, key: tuple[str | int, ...]) -> str:
        """`text` with its references replaced by their values."""

        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.env and self.env[name] != "":
                return self.env[name]
            if self.sections is not None and (not key or key[0] not in self.sections):
                self.unresolved.add(format_key_path(key))
                return match.group(0)
            self.problems.append(self.source.problem(key, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(value_of, text)


def _resolve_env(value: Any, key: tuple[str | int, ...], resolution: _EnvResolution) -> Any:
    """Replace `${NAME}` references with the environment's values, as `resolution` says for unset names."""
    if isinstance(value, dict):
        return {k: _resolve_env(v, (*key, k), resolution) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*key, i), resolution) for i, v in enumerate(value)]
    if isinstance(value, str):
        return resolution.substitute(value, key)
    return value


# Defaults a service's environment may set, for what the config file leaves unsaid (a container image sets both):
# the folder the SQLite store goes to, and the interface the listeners bind.
DATA_DIR_ENV = "SYNCD_DATA_DIR"
LISTEN_HOST_ENV = "SYNCD_LISTEN_HOST"


def _with_listen_host(data: dict[str, Any], host: str | None) -> dict[str, Any]:
    """`host` as the default of [webhooks] and [admin] (a container listens on every interface of its own
    network namespace); a host the config names wins."""
    if host is None:
        return data
    out = dict(data)
    for section in ("webhooks", "admin"):
        table = out.get(section, {})
        if isinstance(table, dict) and "host" not in table:
            out[section] = {**table, "host": host}
    return out


def _resolve_paths(data: dict[str, Any], base: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """Make file paths in the config relative to the config file's folder, as a reader of the file expects;
    a relative SQLite store path (and the default store) goes to `data_dir` instead when one is given, so that
    a service's state lands in its data folder, never beside a config it may not write to."""

    def rel(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return str(base / value)
        return value

    out = dict(data)
    if isinstance(out.get("mappings"), dict) and isinstance(out["mappings"].get("active"), list):
        out["mappings"] = {**out["mappings"], "active": [rel(v) for v in out["mappings"]["active"]]}
    if isinstance(out.get("security"), dict) and "token_key_file" in out["security"]:
        out["security"] = {**out["security"], "token_key_file": rel(out["security"]["token_key_file"])}
    if isinstance(out.get("connections"), dict):
        conns = {}
        for name, conn in out["connections"].items():
            model = connection_model(conn.get("system")) if isinstance(conn, dict) else None
            for key in _file_fields(model) if model is not None else ():
                if key in conn:
                    conn = {**conn, key: rel(conn[key])}
            conns[name] = conn
        out["connections"] = conns
    # The default store too sits beside the config file (or in the data folder), never in whatever folder the
    # daemon was started from.
    store = out.get("store", {})
    if isinstance(store, dict) and "url" not in store:
        store = {**store, "url": StoreSettings().url}
    if isinstance(store, dict) and isinstance(store.get("url"), str):
        url: str = store["url"]
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url[len(prefix):] != ":memory:":
            out["store"] = {**store, "url": prefix + str((data_dir or base) / url[len(prefix):])}
    return out


def _translate(exc: ValidationError, source: TomlSource) -> list[Problem]:
    """Turn pydantic's errors into problems that name the key, its line and what was expected."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        model: type[BaseModel] = Settings
        walk = loc[:-1]
        if len(loc) > 2 and loc[0] == "connections":  # inside one connection: its system's model
            model = _model_of_connection(source.data, str(loc[1])) or ConnectionBase
            walk = loc[2:-1]
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key" + _allowed_keys(model, walk)
        elif kind == "missing":
            message = "missing required key"
        elif kind == "system_unknown":
            message = err["msg"]
        else:
            expected = (err["msg"].removeprefix("Input should be ").removeprefix("Value should be ")
                        .removeprefix("Value error, "))
            given = err.get("input")
            secret = any(word in str(loc[-1]) for word in ("secret", "token", "key"))
            shown = "" if secret or isinstance(given, dict | list) else f" (got {given!r})"
            message = f"expected {expected}{shown}"
        problems.append(source.problem(loc, message))
    return problems


def _model_of_connection(data: Mapping[str, Any], name: str) -> type[ConnectionBase] | None:
    """The model of connection `name` in the file's data, by the system it names."""
    table = data.get("connections", {}).get(name)
    return connection_model(table.get("system")) if isinstance(table, Mapping) else None


def _file_fields(model: type[BaseModel]) -> list[str]:
    """A connection model's fields that name files (typed `Path`, optional or not)."""
    return [name for name, field in model.model_fields.items()
            if field.annotation is Path or Path in get_args(field.annotation)]


def _allowed_keys(model: type[BaseModel], walk: list[str | int]) -> str:
    """Name the keys allowed where an unknown key was found, to help fix a typo."""
    for part in walk:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return f" (allowed here: {', '.join(sorted(model.model_fields))})"


def _check_files(settings: Settings, source: TomlSource, unresolved: set[str]) -> list[Problem]:
    """Check that the files the config names exist and the token key is usable (unless left `unresolved`)."""
    problems = []
    for i, mapping in enumerate(settings.mappings.active):
        if not mapping.is_file():
            problems.append(source.problem(("mappings", "active", i), f"mapping file not found: {mapping}"))
    problems.extend(_check_store_url(settings.store.url, source))
    key_file = settings.security.token_key_file
    if (settings.security.token_key is not None and settings.security.token_key.get_secret_value()
            and "security.token_key" not in unresolved):
        # (An empty key is an unset `${VAR}`, already reported.)
        problems.extend(_check_key_shape(settings.security.token_key.get_secret_value(), ("security", "token_key"),
                                         source))
    elif key_file is not None and key_file.is_file():
        problems.extend(_check_key_shape(key_file.read_bytes().strip().decode("latin-1"),
                                         ("security", "token_key_file"), source, f" (in {key_file})"))
    if settings.connections and key_file is None and settings.security.token_key is None:
        problems.append(
            source.problem(
                ("security",),
                'OAuth tokens need an encryption key: set token_key = "${SYNCD_TOKEN_KEY}" or token_key_file',
            )
        )
    if key_file is not None and not key_file.is_file():
        problems.append(source.problem(("security", "token_key_file"), f"key file not found: {key_file}"))
    for name, conn in settings.connections.items():
        for key in _file_fields(type(conn)):
            file = getattr(conn, key)
            if file is not None and not file.is_file() and f"connections.{name}.{key}" not in unresolved:
                problems.append(source.problem(("connections", name, key), f"file not found: {file}"))
    return problems


# The database backends the store runs on, by URL scheme (a `+driver` suffix is allowed; `postgres` is Heroku's).
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")


def _check_store_url(url: str, source: TomlSource) -> list[Problem]:
    """The store URL names a supported database (checked offline: nothing is opened)."""
    scheme, sep, rest = url.partition("://")
    backend = scheme.partition("+")[0]
    if not sep or backend not in STORE_SCHEMES:
        shown = scheme if sep else url.split("@")[-1][:40]
        return [source.problem(("store", "url"), f"expected a sqlite:///path.db or postgresql://user@host/db URL "
                                                 f"(got scheme {shown!r})")]
    if backend == "sqlite" and rest.lstrip("/") in ("", ":memory:"):
        return [source.problem(("store", "url"), "syncd needs a SQLite file, e.g. sqlite:///var/lib/syncd/syncd.db")]
    return []


def _check_key_shape(key: str, where: tuple[str, ...], source: TomlSource, origin: str = "") -> list[Problem]:
    """The token key is a Fernet key: 32 bytes in url-safe base64 (never echoed: even a near miss is secret)."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) == 32:
        return []
    return [source.problem(where, f"expected a Fernet key{origin}: 44 characters of url-safe base64 encoding 32 "
                                  "bytes; make one with: python -c 'from cryptography.fernet import Fernet; "
                                  "print(Fernet.generate_key().decode())'")]
