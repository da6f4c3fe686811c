"""The facts of HOSTING.md as validated data.

One YAML file per environment (``data/<environment>.yaml``) is parsed into :class:`Environment`.
Every fact a runbook needs — hostnames and their edge posture, services, environment groups, the two
configuration classes, buckets, credentials (as secret *references*), split-trigger thresholds — comes
from here, never from literals in notebooks or provider code.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SECRET_REF_RE = re.compile(r"^(env|file|sandbox|vault):.+$")


def _check_ref(value: str) -> str:
    if not SECRET_REF_RE.match(value):
        raise ValueError(
            f"{value!r} is not a secret reference; write env:NAME, file:PATH[#field] or sandbox:NAME "
            "(inventories carry references, never values)"
        )
    return value


SecretRef = Annotated[str, Field(description="secret reference: env:NAME | file:PATH[#field] | sandbox:NAME")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Posture(StrEnum):
    PROXIED = "proxied"
    DNS_ONLY = "dns_only"


class Hostname(Strict):
    name: str
    audience: str
    posture: Posture
    record_type: Literal["CNAME", "A", "AAAA"] = "CNAME"
    #: what the record points at today (the origin hostname, or the Pages project's domain)
    target: str
    #: blue/green origins for hostnames routed by flipping a CNAME
    blue_green: dict[Literal["blue", "green"], str] | None = None
    pages_project: str | None = None
    pages_function: bool = False
    sets_session_cookie: bool = False
    streams_events: bool = False
    #: health path served by the origin, used as preflight for blue/green flips
    health_path: str = "/healthz"

    @model_validator(mode="after")
    def _consistent(self) -> Hostname:
        if self.pages_function and not self.pages_project:
            raise ValueError("pages_function requires pages_project")
        if self.blue_green and self.record_type != "CNAME":
            raise ValueError("blue/green routing flips a CNAME: record_type must be CNAME")
        if self.blue_green and self.target not in self.blue_green.values():
            raise ValueError(f"target {self.target!r} is neither the blue nor the green origin")
        return self

    @property
    def label(self) -> str:
        return self.name.split(".", 1)[0]


class Service(Strict):
    name: str
    kind: Literal["web", "worker", "cron"]
    env_group: str
    memory_limit_mb: int = Field(gt=0)
    #: code-coupled values this service must carry (class 2), with their expected value if fixed
    code_coupled: dict[str, str] = Field(default_factory=dict)


class CronJob(Strict):
    name: str
    procedure: str
    schedule: str

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a valid cron expression")
        return v


class EnvGroup(Strict):
    name: str
    #: names of the rotating keys (class 1) this group must hold
    keys: list[str]


class RotatingKey(Strict):
    """Class 1: rotating key material. Lives only in the shared environment group."""

    name: str
    provider: Literal["supabase", "cloudflare", "oauth"]
    kind: str
    #: where a new value comes from when the provider cannot issue one (e.g. an OAuth client secret)
    source: SecretRef | None = None

    @field_validator("source")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        return v if v is None else _check_ref(v)


class ConfigClasses(Strict):
    rotating_keys: list[RotatingKey]
    #: Class 2: code-coupled values. Only on services, never in a group.
    code_coupled: list[str]

    @model_validator(mode="after")
    def _disjoint(self) -> ConfigClasses:
        both = {k.name for k in self.rotating_keys} & set(self.code_coupled)
        if both:
            raise ValueError(f"{sorted(both)} cannot be both rotating key material and code-coupled")
        return self

    def rotating(self, name: str) -> RotatingKey:
        for k in self.rotating_keys:
            if k.name == name:
                return k
        raise KeyError(name)


class BucketRole(StrEnum):
    APP_DATA = "app_data"
    BACKUPS = "backups"
    AUDIT = "audit"


class ObjectLock(Strict):
    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int = Field(gt=0)


class Bucket(Strict):
    name: str
    role: BucketRole
    versioning: bool = False
    object_lock: ObjectLock | None = None
    encryption: Literal["AES256", "aws:kms"] | None = None
    block_public_access: bool = True


class S3Credential(Strict):
    access_key_id: SecretRef
    secret_access_key: SecretRef

    @field_validator("access_key_id", "secret_access_key")
    @classmethod
    def _refs(cls, v: str) -> str:
        return _check_ref(v)


class Credentials(Strict):
    """Every credential is a secret reference; values are resolved at run time by runbooks.secret()."""

    cloudflare_api_token: SecretRef
    render_api_key: SecretRef
    supabase_access_token: SecretRef
    database_url: SecretRef
    s3_runtime: S3Credential
    s3_backup_writer: S3Credential
    s3_drill_reader: S3Credential
    #: the audit archive's writer (put and read objects in the audit bucket; no delete, overwrite or retention change)
    s3_audit_writer: S3Credential | None = None
    #: age identity (private key) that decrypts backups; only the drill and restores need it
    backup_identity: SecretRef

    @field_validator(
        "cloudflare_api_token", "render_api_key", "supabase_access_token", "database_url", "backup_identity"
    )
    @classmethod
    def _refs(cls, v: str) -> str:
        return _check_ref(v)


class Endpoints(Strict):
    cloudflare_api: str = "https://api.cloudflare.com/client/v4"
    render_api: str = "https://api.render.com/v1"
    supabase_api: str = "https://api.supabase.com"
    #: the project's own URL (auth, JWKS, REST)
    supabase_project: str
    #: None means AWS's regional endpoint
    s3: str | None = None
    s3_region: str = "us-west-2"
    #: "host:port" of a resolver to ask; None means the system resolver
    dns_resolver: str | None = None
    #: PEM bundle of extra trusted roots (the twin's CA); None means the system store
    ca_bundle: str | None = None
    #: hostname -> "host:port" to connect to instead of resolving (the twin's edge)
    https_overrides: dict[str, str] = Field(default_factory=dict)


class BackupPolicy(Strict):
    schedule: str
    max_age_hours: int = Field(gt=0)
    retention_days: int = Field(gt=0)
    lock_mode: Literal["GOVERNANCE", "COMPLIANCE"]
    #: age recipient (public key) backups are encrypted to: writing a backup never needs the key that reads it
    recipient: str
    prefix: str = "nightly/"


class SplitTriggers(Strict):
    """HOSTING.md, 'When to split the shared compute substrate'."""

    worker_memory_fraction: float = Field(gt=0, lt=1)
    #: "consistently" / "sustained": the share of samples over the window that must exceed a threshold
    sustained_share: float = Field(gt=0, le=1)
    window_hours: int = Field(gt=0)
    #: noisy neighbour: p95 API latency above this many times its baseline, sustained over the window
    api_latency_p95_ratio: float = Field(gt=1)
    api_latency_baseline_ms: float = Field(gt=0)
    multi_region_required: bool = False


class Adr(Strict):
    id: str
    title: str
    decisions: dict[str, str] = Field(default_factory=dict)


# -- schedules: per-environment overrides, alert channels, Render cron settings (runbooks.schedule) ------
class ScheduleOverride(Strict):
    """Per-environment change to a notebook's ``runbook.schedule`` (the one declaration of a schedule)."""

    #: another cron expression (UTC) for this environment; None keeps the notebook's
    cron: str | None = None
    enabled: bool = True
    #: parameters of the scheduled runs (``-p name=value``), validated by the runner like any others
    params: dict[str, str] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        from croniter import croniter

        if v is not None and not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a valid cron expression (five fields, UTC)")
        return v


class AlertChannels(Strict):
    """Where a failed scheduled run or a missed slot is announced. The webhook URL and the routing key are
    secrets: only references here."""

    slack_webhook: SecretRef | None = None
    pagerduty_routing_key: SecretRef | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    #: delivery attempts per message (exponential backoff between them)
    attempts: int = Field(default=4, ge=1, le=10)
    #: first wait between attempts, doubled each time (at most 30 s)
    backoff_seconds: float = Field(default=1.0, ge=0, le=30)

    @field_validator("slack_webhook", "pagerduty_routing_key")
    @classmethod
    def _refs(cls, v: str | None) -> str | None:
        return v if v is None else _check_ref(v)


class RenderCron(Strict):
    """What ``runbooks schedule blueprint`` needs besides the schedules (Render Blueprint cron services)."""

    #: prefix of the cron services' names, ``<prefix><procedure>`` (cron_jobs records the names Render has)
    name_prefix: str = ""
    plan: str = "starter"
    #: the env group holding the runbooks' own credential references (not the application's keys)
    env_group: str
    repo: str | None = None
    branch: str | None = None
    build_command: str = "pip install -r requirements.txt && pip install --no-deps ."
    #: key prefix of the run archive inside the audit bucket
    archive_prefix: str = "runs"


class ScheduleSettings(Strict):
    overrides: dict[str, ScheduleOverride] = Field(default_factory=dict)
    #: a run that starts later than this after its slot is "late" (schedule compliance)
    late_tolerance_minutes: int = Field(default=15, ge=0)
    alerts: AlertChannels = Field(default_factory=AlertChannels)
    render: RenderCron | None = None


# -- issue 14: vendor identifiers, service probes, the platform's expected posture -------------------------
class VendorIds(Strict):
    """Identifiers the vendors gave the resources above, checked by ``runbooks inventory check``."""

    cloudflare_zone_id: str | None = None
    #: Render service or cron job name -> its id (``srv-...`` / ``crn-...``)
    render_services: dict[str, str] = Field(default_factory=dict)


class Probes(Strict):
    """Where the runbooks probe Spectral's services: the service contract (docs/SERVICE_CONTRACT.md)."""

    #: every service: generation and key fingerprints (web services over HTTP)
    health_path: str = "/healthz"
    #: the hostnames that set the session cookie: a POST here signs in and answers with Set-Cookie
    sign_in_path: str = "/auth/sign-in"
    #: the hostnames that stream server-sent events
    events_path: str = "/events"
    #: a service without a URL (a background worker) writes its health as a log line starting with this
    heartbeat_marker: str = "spectral-health "
    #: how often it writes one; a line older than twice this is stale
    heartbeat_seconds: int = Field(default=60, gt=0)

    @field_validator("health_path", "sign_in_path", "events_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"{v!r} is not a path (write it with a leading /)")
        return v


class RenderServicePosture(Strict):
    """What Render must say about one service or cron job (``verify-platform-posture``)."""

    type: Literal["web_service", "background_worker", "cron_job", "private_service"]
    plan: str
    instances: int = Field(default=1, ge=1)


class SupabasePosture(Strict):
    ssl_enforced: bool = True
    #: CIDRs allowed to reach the database (IPv4 and IPv6); the project's network restrictions must equal them
    allowed_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])
    #: the access-token lifetime must not exceed this (policy)
    max_access_token_lifetime_seconds: int = Field(default=3600, gt=0)
    #: the signing key in use must be asymmetric (one of these algorithms)
    signing_algorithms: list[str] = Field(default_factory=lambda: ["ES256", "RS256", "EdDSA"])
    #: pgvector: the ``vector`` extension's version the application is built against
    vector_version: str = "0.8.0"


class PlatformPosture(Strict):
    """The hosting's expected settings at Render and Supabase, checked daily by ``verify-platform-posture``."""

    #: Render service / cron job name -> type, plan, instance count
    render: dict[str, RenderServicePosture] = Field(default_factory=dict)
    #: the command each cron job runs; ``{procedure}`` and ``{environment}`` are filled in
    cron_command: str = "runbooks run {procedure} --env {environment} --trigger schedule"
    supabase: SupabasePosture = Field(default_factory=SupabasePosture)


class Environment(Strict):
    environment: Literal["production", "staging", "sandbox"]
    adrs: list[Adr]
    zone: str
    cookie_domain: str
    region: str
    cloudflare_account_id: str
    supabase_project_ref: str
    render_owner_id: str
    #: PITR window the plan promises, in days
    pitr_days: int = Field(gt=0)
    #: access-token lifetime of the auth service (JWT signing-key rotation waits this long)
    access_token_lifetime_seconds: int = Field(gt=0)
    hostnames: list[Hostname]
    services: list[Service]
    cron_jobs: list[CronJob] = Field(default_factory=list)
    env_groups: list[EnvGroup]
    config: ConfigClasses
    buckets: list[Bucket]
    backup: BackupPolicy
    credentials: Credentials
    endpoints: Endpoints
    split_triggers: SplitTriggers
    #: schedule overrides, alert channels and Render cron settings (runbooks schedule ...)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    #: sandbox only: read endpoints and credentials from the running twin's endpoints file
    endpoints_from_sandbox: bool = False
    # -- issue 14 (vendors) --
    vendor_ids: VendorIds = Field(default_factory=VendorIds)
    probes: Probes = Field(default_factory=Probes)
    platform: PlatformPosture = Field(default_factory=PlatformPosture)

    @model_validator(mode="after")
    def _cross_references(self) -> Environment:
        groups = {g.name for g in self.env_groups}
        for s in self.services:
            if s.env_group not in groups:
                raise ValueError(f"service {s.name!r} links env group {s.env_group!r}, which is not declared")
        rotating = {k.name for k in self.config.rotating_keys}
        for g in self.env_groups:
            unknown = set(g.keys) - rotating
            if unknown:
                raise ValueError(f"env group {g.name!r} lists {sorted(unknown)}, which are not rotating keys")
        for h in self.hostnames:
            if not h.name.endswith("." + self.zone):
                raise ValueError(f"hostname {h.name!r} is outside zone {self.zone!r}")
        if not (self.zone == self.cookie_domain or self.zone.endswith("." + self.cookie_domain)):
            raise ValueError(f"cookie_domain {self.cookie_domain!r} does not cover zone {self.zone!r}")
        roles = [b.role for b in self.buckets]
        if roles.count(BucketRole.BACKUPS) != 1:
            raise ValueError("exactly one bucket must have role 'backups'")
        # The backup bucket being one of the app-data buckets is a posture violation that
        # verify-backup-posture reports as a FAIL with remediation; it is not a malformed inventory.
        return self

    @model_validator(mode="after")
    def _platform_names(self) -> Environment:
        known = {s.name for s in self.services} | {c.name for c in self.cron_jobs}
        unknown = sorted(set(self.platform.render) - known)
        if unknown:
            raise ValueError(f"platform.render names {unknown}, which are neither services nor cron jobs")
        return self

    # -- lookups used by notebooks and checks -------------------------------------------------
    def hostname(self, name: str) -> Hostname:
        for h in self.hostnames:
            if name in (h.name, h.label):
                return h
        raise KeyError(f"unknown hostname {name!r}; known: {', '.join(h.name for h in self.hostnames)}")

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in self.services)}")

    @property
    def backup_bucket(self) -> Bucket:
        return next(b for b in self.buckets if b.role is BucketRole.BACKUPS)

    @property
    def app_buckets(self) -> list[Bucket]:
        return [b for b in self.buckets if b.role is BucketRole.APP_DATA]

    @property
    def audit_bucket(self) -> Bucket | None:
        return next((b for b in self.buckets if b.role is BucketRole.AUDIT), None)

    def group_for(self, service: str) -> EnvGroup:
        name = self.service(service).env_group
        return next(g for g in self.env_groups if g.name == name)
