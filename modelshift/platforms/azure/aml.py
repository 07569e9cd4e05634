"""Azure ML managed online endpoints: the endpoint's ``traffic`` / ``mirror_traffic`` as a TrafficRouter.

An app maps to one managed online endpoint; its bundles' deployments sit side by side under it. Weights are
validated here against what Azure allows before anything is sent, because the SDK checks none of it
(it only drops zero entries and lower-cases the keys):

- live ``traffic``: ints, each 0..100, summing to exactly 100. Azure also accepts a sum of 0 (the endpoint
  then serves nothing); modelshift refuses that, since it would take the app offline;
- ``mirror_traffic`` (shadow copies whose answers are discarded): sum at most 50, at most one deployment,
  and a deployment takes live or mirrored traffic, never both ("You can mirror traffic to only one
  deployment in an endpoint", "You can configure a deployment to receive only live traffic or mirrored
  traffic, not both" — Azure ML docs, *Perform safe rollout of new deployments*);
- every name must be a deployment of the endpoint (checked by listing them first);
- names are compared lower-cased, as the SDK sends them; two names equal but for case are refused.

azure-core errors are translated into :mod:`modelshift.errors` in :func:`_azure_errors`, the one place
where this adapter meets them. Retries of throttled/5xx calls are azure-core's own policy, configured on
the ``MLClient`` (``retry_total=...``); what is left when it gives up surfaces as ThrottledError or
TransientPlatformError, which the Prefect tasks retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from pydantic import BaseModel, ConfigDict

from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    DeploymentNotFoundError,
    ModelshiftError,
    OperationFailedError,
    PlatformError,
    RouterInvariantError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.base import ProvisioningState, RouteWeights

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

#: Azure's cap on the sum of mirrored (shadow) traffic, in percent
MAX_MIRROR_PERCENT = 50

__all__ = [
    "MAX_MIRROR_PERCENT",
    "AmlDeployments",
    "AmlEndpointRouter",
    "OnlineDeploymentInfo",
    "normalize_route",
]


class OnlineDeploymentInfo(BaseModel):
    """One online deployment of a managed online endpoint, as ARM reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    endpoint: str
    model: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    provisioning_state: ProvisioningState = ProvisioningState.UNKNOWN


# ----------------------------------------------------------------------------------- validation


def _normalize_map(values: Mapping[str, int], *, field: str) -> tuple[dict[str, int], list[str]]:
    """Lower-case keys, drop zeros, and collect every problem (type, range, case clash) of one map."""
    problems: list[str] = []
    out: dict[str, int] = {}
    seen: dict[str, str] = {}
    for raw_name, value in values.items():
        if not isinstance(raw_name, str) or not raw_name:
            problems.append(f"{field}: deployment name {raw_name!r} is not a non-empty string")
            continue
        name = raw_name.lower()
        if name in seen:
            problems.append(
                f"{field}: {seen[name]!r} and {raw_name!r} name the same deployment (Azure ignores case)"
            )
            continue
        seen[name] = raw_name
        # bool is an int subclass; True would silently mean 1 %
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{field}.{raw_name}: {value!r} is not an integer percentage")
            continue
        if not 0 <= value <= 100:
            problems.append(f"{field}.{raw_name}: {value} is outside 0..100")
            continue
        if value:
            out[name] = value
    return out, problems


def normalize_route(
    weights: Mapping[str, int], mirror: Mapping[str, int] | None = None, *, endpoint: str
) -> RouteWeights:
    """Validate a traffic split as Azure ML allows it and return it lower-cased without zero entries.

    Raises RouterInvariantError listing every problem at once; nothing is sent to Azure.
    """
    live, problems = _normalize_map(weights, field="traffic")
    shadow, mirror_problems = _normalize_map(mirror or {}, field="mirror_traffic")
    problems += mirror_problems
    if not problems:
        total = sum(live.values())
        if total != 100:
            problems.append(f"traffic: weights sum to {total}, must be exactly 100")
        mirrored = sum(shadow.values())
        if mirrored > MAX_MIRROR_PERCENT:
            problems.append(f"mirror_traffic: sums to {mirrored}, Azure allows at most {MAX_MIRROR_PERCENT}")
        if len(shadow) > 1:
            problems.append(f"mirror_traffic: {sorted(shadow)} — Azure mirrors to one deployment only")
        problems.extend(
            f"mirror_traffic.{name}: also takes {live[name]} % live traffic; a deployment takes live or "
            "mirrored traffic, not both"
            for name in sorted(shadow.keys() & live.keys())
        )
    if problems:
        raise RouterInvariantError(
            f"traffic for endpoint {endpoint!r} refused, nothing was changed:\n"
            + "\n".join(f"  {p}" for p in problems),
            endpoint=endpoint,
            problems=problems,
        )
    return RouteWeights(weights=live, mirror=shadow)


def _comparable(route: RouteWeights) -> tuple[dict[str, int], dict[str, int]]:
    """A route as Azure stores it: lower-cased keys, no zero entries."""
    return (
        {k.lower(): v for k, v in route.weights.items() if v},
        {k.lower(): v for k, v in route.mirror.items() if v},
    )


# --------------------------------------------------------------------------------- error mapping


def _retry_after(exc: HttpResponseError) -> float | None:
    """Seconds from the response's ``Retry-After`` header, if it carried a number."""
    response = exc.response
    if response is None:
        return None
    # azure-core's response classes all carry a case-insensitive ``headers`` mapping; its typing omits it
    headers: Mapping[str, str] = getattr(response, "headers", {})
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: AzureError) -> tuple[str | None, str]:
    """Azure's error code and message from an azure-core exception."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return code, str(message).splitlines()[0] if message else type(exc).__name__


@contextmanager
def _azure_errors(what: str, *, endpoint: str, workspace: str, credential: str) -> Iterator[None]:
    """Translate every azure-core / azure-ai-ml error raised inside into modelshift.errors."""
    ctx: dict[str, Any] = {"endpoint": endpoint, "workspace": workspace}
    try:
        yield
    except ModelshiftError:
        raise
    except ClientAuthenticationError as exc:
        code, message = _describe(exc)
        raise AuthError(
            f"{what}: Azure ML refused the credential {credential} for workspace {workspace!r} "
            f"({code or 'no code'}: {message}); sign in (`az login`) or grant the identity a role such as "
            "'AzureML Data Scientist' on the workspace",
            status_code=getattr(exc, "status_code", None),
            code=code,
            request=what,
            **ctx,
        ) from exc
    except ResourceNotFoundError as exc:
        code, message = _describe(exc)
        raise DeploymentNotFoundError(
            f"{what}: online endpoint {endpoint!r} not found in workspace {workspace!r} ({message}); "
            "check the endpoint name the app maps to, or create the endpoint first",
            status_code=404,
            code=code,
            request=what,
            **ctx,
        ) from exc
    except HttpResponseError as exc:
        raise _from_http(exc, what, endpoint=endpoint, workspace=workspace, credential=credential) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientPlatformError(
            f"{what}: could not reach Azure ML for workspace {workspace!r} ({type(exc).__name__}: {exc}); "
            "check the network and retry",
            request=what,
            **ctx,
        ) from exc
    except AzureError as exc:
        raise PlatformError(f"{what}: Azure ML failed: {exc}", request=what, **ctx) from exc
    except Exception as exc:
        # azure-ai-ml's own client-side checks (MlException, ValidationException, marshmallow errors)
        if type(exc).__module__.startswith(("azure.ai.ml", "marshmallow")):
            raise ConfigError(f"{what}: azure-ai-ml refused the request: {exc}", **ctx) from exc
        raise


def _from_http(
    exc: HttpResponseError, what: str, *, endpoint: str, workspace: str, credential: str
) -> PlatformError:
    """Map an HTTP failure (or a long-running operation that ended Failed) onto the error tree."""
    status = exc.status_code
    code, message = _describe(exc)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "request": what,
        "endpoint": endpoint,
        "workspace": workspace,
    }
    detail = f"{code}: {message}" if code else message
    if status in (401, 403):
        return AuthError(
            f"{what}: Azure ML denied {credential} on workspace {workspace!r} ({status} {detail}); grant the "
            "identity a role that may write online endpoints (e.g. 'AzureML Data Scientist')",
            **kwargs,
        )
    if status == 404:
        return DeploymentNotFoundError(
            f"{what}: online endpoint {endpoint!r} in workspace {workspace!r} not found ({detail})", **kwargs
        )
    if status == 429:
        wait = _retry_after(exc)
        return ThrottledError(
            f"{what}: Azure ML throttled the request ({detail}); retry after {wait or 'a short wait'} s",
            retry_after=wait,
            **kwargs,
        )
    if status is not None and status >= 500:
        return TransientPlatformError(
            f"{what}: Azure ML failed with {status} ({detail}); retry later", **kwargs
        )
    if status is not None and 400 <= status < 500:
        return BadRequestError(
            f"{what}: Azure ML rejected the request for endpoint {endpoint!r} ({status} {detail})", **kwargs
        )
    # ARM polling raises HttpResponseError for an operation that ended Failed/Canceled (status 200)
    return OperationFailedError(
        f"{what}: the update of endpoint {endpoint!r} ended unsuccessfully ({detail}); read the endpoint's "
        "activity log in the Azure portal, fix the cause and set the weights again",
        **kwargs,
    )


# -------------------------------------------------------------------------------------- adapters


class _AmlBase:
    """Shared plumbing: the MLClient and the names that go into error messages."""

    def __init__(self, ml_client: MLClient) -> None:
        self._ml = ml_client
        self._workspace = f"{ml_client.resource_group_name}/{ml_client.workspace_name}"
        # MLClient keeps its credential private; its class name tells the user which one was tried
        self._credential = type(getattr(ml_client, "_credential", None)).__name__

    def _errors(self, what: str, endpoint: str) -> AbstractContextManager[None]:
        return _azure_errors(what, endpoint=endpoint, workspace=self._workspace, credential=self._credential)


class AmlDeployments(_AmlBase):
    """List and read the online deployments of a managed online endpoint."""

    def list(self, endpoint: str) -> list[OnlineDeploymentInfo]:
        """Every deployment of ``endpoint`` (all pages); DeploymentNotFoundError if the endpoint is gone."""
        with self._errors(f"list deployments of {endpoint}", endpoint):
            return [_deployment_info(d, endpoint) for d in self._ml.online_deployments.list(endpoint)]

    def get(self, endpoint: str, name: str) -> OnlineDeploymentInfo:
        """One deployment; DeploymentNotFoundError naming it when it does not exist."""
        what = f"get deployment {name} of {endpoint}"
        try:
            with self._errors(what, endpoint):
                return _deployment_info(self._ml.online_deployments.get(name, endpoint), endpoint)
        except DeploymentNotFoundError as exc:
            raise DeploymentNotFoundError(
                f"{what}: no deployment {name!r} under endpoint {endpoint!r} in workspace "
                f"{self._workspace!r}; list them with `az ml online-deployment list -e {endpoint}`",
                status_code=exc.status_code,
                code=exc.code,
                request=what,
                endpoint=endpoint,
                deployment=name,
            ) from exc


def _deployment_info(deployment: Any, endpoint: str) -> OnlineDeploymentInfo:
    """Our result type from an azure-ai-ml OnlineDeployment."""
    model = deployment.model
    return OnlineDeploymentInfo(
        name=deployment.name,
        endpoint=deployment.endpoint_name or endpoint,
        model=model if isinstance(model, str) or model is None else getattr(model, "id", None) or str(model),
        instance_type=deployment.instance_type,
        instance_count=deployment.instance_count,
        provisioning_state=ProvisioningState.parse(deployment.provisioning_state),
    )


class AmlEndpointRouter(_AmlBase):
    """TrafficRouter over a managed online endpoint's ``traffic`` and ``mirror_traffic``.

    ``endpoint_for`` maps an app to its endpoint name (a mapping or a function); by default the app name
    is the endpoint name.
    """

    def __init__(
        self,
        ml_client: MLClient,
        *,
        endpoint_for: Mapping[str, str] | Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(ml_client)
        self._endpoint_for = endpoint_for
        self._deployments = AmlDeployments(ml_client)

    def endpoint(self, app: str) -> str:
        """The endpoint name that serves ``app``."""
        if self._endpoint_for is None:
            return app
        if callable(self._endpoint_for):
            return self._endpoint_for(app)
        try:
            return self._endpoint_for[app]
        except KeyError:
            raise ConfigError(
                f"app {app!r} has no Azure ML endpoint configured; known apps: {sorted(self._endpoint_for)}",
                app=app,
            ) from None

    def read(self, app: str) -> RouteWeights:
        """The weights in force; every deployment of the endpoint appears, those without traffic as 0."""
        endpoint = self.endpoint(app)
        with self._errors(f"read traffic of {endpoint}", endpoint):
            current = self._ml.online_endpoints.get(endpoint)
        return _route_of(current)

    def set(
        self, app: str, weights: Mapping[str, int], mirror: Mapping[str, int] | None = None
    ) -> RouteWeights:
        """Validate, check the names against the endpoint's deployments, then PUT and wait for the LRO.

        ``mirror=None`` means no mirrored traffic (any existing mirror is switched off), so a rollback
        with weights alone leaves nothing of the candidate running in the shadow either.
        """
        endpoint = self.endpoint(app)
        route = normalize_route(weights, mirror, endpoint=endpoint)
        known = {d.name.lower() for d in self._deployments.list(endpoint)}
        unknown = sorted((route.weights.keys() | route.mirror.keys()) - known)
        if unknown:
            raise DeploymentNotFoundError(
                f"set traffic of {endpoint}: no deployment {', '.join(map(repr, unknown))} under endpoint "
                f"{endpoint!r} in workspace {self._workspace!r} (it has {sorted(known)}); nothing was "
                "changed — create the deployment first or fix the bundle's deployment name",
                request=f"set traffic of {endpoint}",
                endpoint=endpoint,
                deployments=unknown,
            )
        with self._errors(f"set traffic of {endpoint}", endpoint):
            current = self._ml.online_endpoints.get(endpoint)
            current.traffic = dict(route.weights)
            current.mirror_traffic = dict(route.mirror)
            updated = self._ml.online_endpoints.begin_create_or_update(current).result()
        return _route_of(updated)

    def verify(self, app: str, expected: RouteWeights) -> None:
        """Re-read the endpoint; RouterInvariantError naming both splits when they differ (zeros ignored)."""
        endpoint = self.endpoint(app)
        actual = self.read(app)
        want, got = _comparable(expected), _comparable(actual)
        if want != got:
            raise RouterInvariantError(
                f"endpoint {endpoint!r} serves traffic={got[0]} mirror={got[1]}, expected traffic={want[0]} "
                f"mirror={want[1]}; someone else changed it or the update did not apply — set the weights "
                "again",
                endpoint=endpoint,
                expected={"traffic": want[0], "mirror": want[1]},
                actual={"traffic": got[0], "mirror": got[1]},
            )


def _route_of(endpoint: Any) -> RouteWeights:
    """RouteWeights from an azure-ai-ml OnlineEndpoint, keys lower-cased as Azure stores them."""
    traffic = {str(k).lower(): int(v) for k, v in (endpoint.traffic or {}).items()}
    mirror = {str(k).lower(): int(v) for k, v in (endpoint.mirror_traffic or {}).items() if int(v)}
    return RouteWeights(weights=traffic, mirror=mirror)
