"""Render: env groups, services and their env vars, deploys, metrics, logs and service health.

Calls go through Render's generated public-API client (``render.public_api``, from the ``render``
package) with the inventory's ``endpoints.render_api`` as base URL, so the same code talks to Render and
to the twin. Env var values may be key material: every value this provider returns is registered with the
redactor first (:func:`runbooks.secrets.protect`), and callers show fingerprints, never values, except the
values of ``public`` names (the inventory's code-coupled values, e.g. ``SPECTRAL_GENERATION``), which are
configuration, not secrets, and must stay readable in findings. A name not listed as public is protected.

Service health follows the service contract (docs/SERVICE_CONTRACT.md): a service with a URL answers
``GET <url><probes.health_path>``; a background worker has no URL on Render, so it writes the same report
as a log line starting with ``probes.heartbeat_marker``, read back through Render's logs API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self

import httpx
from render.public_api.api.deploys import create_deploy, list_deploys, retrieve_deploy
from render.public_api.api.environment_groups import (
    list_env_groups,
    retrieve_env_group,
    update_env_group_env_var,
)
from render.public_api.api.logs import list_logs
from render.public_api.api.metrics import get_cpu, get_http_latency, get_memory, get_memory_limit
from render.public_api.api.services import (
    delete_env_var,
    get_env_vars_for_service,
    list_services,
    update_env_var,
)
from render.public_api.client import AuthenticatedClient
from render.public_api.models.create_deploy_body import CreateDeployBody
from render.public_api.models.env_var_value import EnvVarValue
from render.public_api.models.error import Error
from render.public_api.models.log_direction import LogDirection
from render.public_api.types import UNSET, Response

from runbooks import redact
from runbooks.providers.base import Provider, ProviderError, retry_transient
from runbooks.secrets import protect

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

TERMINAL_DEPLOY = {"live", "build_failed", "update_failed", "pre_deploy_failed", "canceled", "deactivated"}
METRICS = {"memory": get_memory, "memory-limit": get_memory_limit, "cpu": get_cpu, "http-latency": get_http_latency}


#: the service contract's defaults (the inventory's ``probes`` override them)
HEALTH_PATH = "/healthz"
HEARTBEAT_MARKER = "spectral-health "


@dataclass(frozen=True)
class RenderService:
    id: str
    name: str
    type: str
    url: str | None
    health_path: str | None
    region: str | None = None
    plan: str | None = None
    instances: int | None = None
    #: cron jobs: the schedule and the command each run executes
    schedule: str | None = None
    start_command: str | None = None

    @property
    def health_url(self) -> str | None:
        return f"{self.url.rstrip('/')}{self.health_path or HEALTH_PATH}" if self.url else None


@dataclass(frozen=True)
class EnvGroup:
    id: str
    name: str
    env: dict[str, str] = field(repr=False)
    service_ids: tuple[str, ...]
    service_names: tuple[str, ...]


@dataclass(frozen=True)
class Deploy:
    id: str
    status: str
    image_ref: str | None
    created_at: datetime | None
    finished_at: datetime | None
    #: a git-built service's deploy names the commit it built (and has no image)
    commit_id: str | None = None


def _deploy(d: Any) -> Deploy:
    def opt(v: Any) -> Any:
        return None if v is UNSET else v

    image, commit = opt(d.image), opt(d.commit)
    return Deploy(
        id=d.id,
        status=str(opt(d.status) or ""),
        image_ref=opt(image.ref) if image else None,
        created_at=opt(d.created_at),
        finished_at=opt(d.finished_at),
        commit_id=opt(commit.id) if commit else None,
    )


def _service(s: Any, health_path: str) -> RenderService:
    """A service from the generated client's model, read from its JSON form: the client parses
    ``serviceDetails`` as the first detail type that fits, so fields are read by name, not by type."""
    details = s.service_details.to_dict() if hasattr(s.service_details, "to_dict") else {}
    specific = details.get("envSpecificDetails") or {}
    instances = details.get("numInstances")
    return RenderService(
        id=s.id,
        name=s.name,
        type=str(s.type_),
        url=details.get("url"),
        health_path=health_path,
        region=details.get("region"),
        plan=details.get("plan"),
        instances=int(instances) if instances is not None else None,
        schedule=details.get("schedule"),
        start_command=specific.get("startCommand") if isinstance(specific, dict) else None,
    )


def public_names(env: Environment) -> frozenset[str]:
    """Env var names whose values are configuration, not secrets: the inventory's code-coupled values
    (minus any name that is also rotating key material, which the inventory refuses anyway)."""
    rotating = {k.name for k in env.config.rotating_keys}
    return frozenset(n for n in env.config.code_coupled if n not in rotating)


class RenderProvider(Provider):
    """Client of the Render API for one workspace (owner)."""

    name = "render"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        owner_id: str | None = None,
        *,
        public: Iterable[str] = (),
        timeout: float = 20.0,
        health_path: str = HEALTH_PATH,
        heartbeat_marker: str = HEARTBEAT_MARKER,
        heartbeat_seconds: float = 60.0,
    ):
        self.owner_id = owner_id
        #: the service contract's probes (inventory ``probes``)
        self.health_path, self.heartbeat_marker, self.heartbeat_seconds = (
            health_path,
            heartbeat_marker,
            heartbeat_seconds,
        )
        #: env var names whose values are not secret (code-coupled values): returned without registering
        self.public = frozenset(public)
        self._client = AuthenticatedClient(base_url=base_url.rstrip("/"), token=api_key, timeout=httpx.Timeout(timeout))
        self._http = httpx.Client(timeout=5.0)

    @classmethod
    def from_environment(cls, env: Environment) -> Self:
        from runbooks.secrets import secret

        return cls(
            env.endpoints.render_api,
            secret(env.credentials.render_api_key),
            env.render_owner_id,
            public=public_names(env),
            health_path=env.probes.health_path,
            heartbeat_marker=env.probes.heartbeat_marker,
            heartbeat_seconds=env.probes.heartbeat_seconds,
        )

    def close(self) -> None:
        self._client.get_httpx_client().close()
        self._http.close()

    def _value(self, where: str, key: str, value: str) -> str:
        """``value`` of env var ``key``; registered for redaction unless ``key`` is a public name."""
        return value if key in self.public else protect(value, f"render:{where}:{key}")

    # -- plumbing ---------------------------------------------------------------------------------
    def _call(self, operation: str, endpoint: Any, *args: Any, idempotent: bool = True, **kwargs: Any) -> Any:
        def once() -> Response[Any]:
            r: Response[Any] = endpoint.sync_detailed(*args, client=self._client, **kwargs)
            if idempotent and r.status_code in (429, 502, 503, 504):
                raise httpx.HTTPStatusError(
                    "transient", request=httpx.Request("GET", operation), response=httpx.Response(int(r.status_code))
                )
            return r

        try:
            resp = retry_transient(once)() if idempotent else once()
        except httpx.HTTPStatusError as e:
            raise ProviderError(self.name, operation, "transient error persisted", status=e.response.status_code) from e
        except httpx.HTTPError as e:
            raise ProviderError(self.name, operation, f"{type(e).__name__}: {e}") from e
        if resp.status_code >= HTTPStatus.BAD_REQUEST:
            detail = resp.parsed.message if isinstance(resp.parsed, Error) and resp.parsed.message else ""
            raise ProviderError(
                self.name,
                operation,
                redact.cut(str(detail or resp.content.decode(errors="replace")), 300),
                status=int(resp.status_code),
            )
        return resp.parsed

    # -- services ---------------------------------------------------------------------------------
    def services(self) -> list[RenderService]:
        kwargs: dict[str, Any] = {"owner_id": [self.owner_id]} if self.owner_id else {}
        items = self._call("list services", list_services, limit=100, **kwargs) or []
        return [_service(item.service, self.health_path) for item in items]

    def service(self, name: str) -> RenderService:
        for s in self.services():
            if s.name == name:
                return s
        raise ProviderError(self.name, f"find service {name}", "no such service in the workspace", status=404)

    def service_env(self, service_id: str) -> dict[str, str]:
        """The service's own env vars (not its groups'); values registered for redaction."""
        items = self._call(f"list env vars of {service_id}", get_env_vars_for_service, service_id) or []
        return {i.env_var.key: self._value(service_id, i.env_var.key, i.env_var.value) for i in items}

    def set_service_var(self, service_id: str, key: str, value: str) -> None:
        self._call(f"set {key} on {service_id}", update_env_var, service_id, key, body=EnvVarValue(value=value))

    def delete_service_var(self, service_id: str, key: str) -> None:
        self._call(f"delete {key} from {service_id}", delete_env_var, service_id, key)

    # -- env groups -------------------------------------------------------------------------------
    def env_group(self, name: str) -> EnvGroup:
        metas = self._call("list env groups", list_env_groups, name=[name]) or []
        meta = next((m for m in metas if m.name == name), None)
        if meta is None:
            raise ProviderError(self.name, f"find env group {name}", "no such env group", status=404)
        g = self._call(f"retrieve env group {name}", retrieve_env_group, meta.id)
        env = {v.key: self._value(name, v.key, v.value) for v in g.env_vars}
        links = list(g.service_links)
        return EnvGroup(g.id, g.name, env, tuple(x.id for x in links), tuple(x.name for x in links))

    def set_group_var(self, group_id: str, key: str, value: str) -> None:
        self._call(
            f"set {key} in env group {group_id}", update_env_group_env_var, group_id, key, body=EnvVarValue(value=value)
        )

    # -- deploys ----------------------------------------------------------------------------------
    def deploy(self, service_id: str) -> Deploy:
        d = self._call(f"deploy {service_id}", create_deploy, service_id, body=CreateDeployBody(), idempotent=False)
        return _deploy(d)

    def deploys(self, service_id: str, limit: int = 20) -> list[Deploy]:
        items = self._call(f"list deploys of {service_id}", list_deploys, service_id, limit=limit) or []
        return [_deploy(i.deploy) for i in items]

    def get_deploy(self, service_id: str, deploy_id: str) -> Deploy:
        return _deploy(self._call(f"retrieve deploy {deploy_id}", retrieve_deploy, service_id, deploy_id))

    def live_deploy(self, service_id: str) -> Deploy | None:
        return next((d for d in self.deploys(service_id) if d.status == "live"), None)

    def wait_deploy(self, service_id: str, deploy_id: str, *, timeout: float = 120.0, interval: float = 0.5) -> Deploy:
        """Poll until the deploy reaches a terminal status; raises ProviderError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.get_deploy(service_id, deploy_id)
            if d.status in TERMINAL_DEPLOY:
                return d
            if time.monotonic() > deadline:
                raise ProviderError(self.name, f"wait for deploy {deploy_id}", f"still {d.status} after {timeout:.0f}s")
            time.sleep(interval)

    # -- health and metrics -----------------------------------------------------------------------
    def health(self, service: RenderService) -> tuple[int, dict[str, Any]]:
        """(status, body) of the service's health report (docs/SERVICE_CONTRACT.md); (0, {error}) when
        there is none. A service with a URL: its health endpoint (the HTTP status). A background worker
        (no URL on Render): its latest health log line, 200 if it says healthy, else 503."""
        if not service.health_url:
            return self.heartbeat(service)
        try:
            r = self._http.get(service.health_url)
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            return 0, {"error": f"{type(e).__name__}", "via": service.health_url}
        return r.status_code, body if isinstance(body, dict) else {"error": "the answer is not a JSON object"}

    def log_lines(
        self, service_id: str, text: str, *, since: datetime | None = None, limit: int = 1
    ) -> list[tuple[datetime, str]]:
        """The newest ``limit`` log lines of a service containing ``text``: [(timestamp, message)], newest first."""
        if not self.owner_id:
            raise ProviderError(self.name, "list logs", "the workspace (owner id) is not known")
        kwargs: dict[str, Any] = {"start_time": since} if since else {}
        page = self._call(
            f"logs of {service_id}",
            list_logs,
            owner_id=self.owner_id,
            resource=[service_id],
            text=[text],
            direction=LogDirection.BACKWARD,
            limit=limit,
            **kwargs,
        )
        return [(x.timestamp, x.message) for x in (page.logs if page else [])]

    def heartbeat(self, service: RenderService) -> tuple[int, dict[str, Any]]:
        """A URL-less service's latest health line (``<marker><JSON>``) through Render's logs API.

        A line older than twice the heartbeat interval is not a report (the worker may be gone): (0, error)."""
        where = f"Render logs of {service.name}, lines starting {self.heartbeat_marker.strip()!r}"
        window = timedelta(seconds=max(10 * self.heartbeat_seconds, 60))
        try:
            lines = self.log_lines(service.id, self.heartbeat_marker, since=datetime.now(UTC) - window)
        except ProviderError as e:
            return 0, {"error": str(e), "via": where}
        line = next(((t, m) for t, m in lines if m.startswith(self.heartbeat_marker)), None)
        if line is None:
            return 0, {"error": f"no health line in the last {window.total_seconds():.0f}s", "via": where}
        at, message = line
        age = (datetime.now(UTC) - at).total_seconds()
        if age > 2 * self.heartbeat_seconds + 1:
            return 0, {"error": f"the latest health line is {age:.0f}s old (stale)", "via": where}
        try:
            body = json.loads(message[len(self.heartbeat_marker) :])
        except ValueError:
            return 0, {"error": "the latest health line is not JSON after the marker", "via": where}
        if not isinstance(body, dict):
            return 0, {"error": "the latest health line is not a JSON object", "via": where}
        body.update({"via": where, "reported_at": at.isoformat()})
        return (200 if body.get("healthy") else 503), body

    def metric(
        self,
        metric: str,
        service_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        resolution_seconds: int = 60,
        quantile: float | None = None,
    ) -> list[tuple[datetime, float]]:
        """One metric series of one service: [(timestamp, value)]."""
        kwargs: dict[str, Any] = {"resource": service_id, "resolution_seconds": resolution_seconds}
        if start:
            kwargs["start_time"] = start
        if end:
            kwargs["end_time"] = end
        if quantile is not None:
            kwargs["quantile"] = quantile
        series = self._call(f"{metric} metrics of {service_id}", METRICS[metric], **kwargs) or []
        return [(v.timestamp, float(v.value)) for s in series for v in s.values]
