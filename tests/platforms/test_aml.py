"""AmlEndpointRouter / AmlDeployments driving the real azure-ai-ml SDK against recorded ARM responses.

The SDK, its serializers, its ARM pipeline and its LRO poller all run for real; only the HTTP transport is
replaced (a ``requests`` adapter mounted on azure-core's ``RequestsTransport``) by :class:`FakeArm`, which
answers from ``aml_recordings/`` and records every request so the tests can check the bodies sent.
No Azure, no network.
"""

from __future__ import annotations

import io
import json
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport

from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    DeploymentNotFoundError,
    OperationFailedError,
    RouterInvariantError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.azure.aml import (
    AmlDeployments,
    AmlEndpointRouter,
    OnlineDeploymentInfo,
    normalize_route,
)
from modelshift.platforms.base import ProvisioningState, RouteWeights, TrafficRouter

RECORDINGS = Path(__file__).parent / "aml_recordings"
SUB, RG, WS = "00000000-1111-2222-3333-444444444444", "rg-genai", "ws-genai"
WS_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
)
OPERATION_URL = (
    f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices"
    "/locations/eastus2/mfeOperationsStatus/oe:7c1d2e3f-0a9b-4c8d-8e7f-6a5b4c3d2e1f?api-version=2022-02-01-preview"
)

# azure-ai-ml emits dozens of marshmallow deprecation warnings on import and use; they are not ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def recording(name: str) -> Any:
    """A recorded response body."""
    return json.loads((RECORDINGS / name).read_text())


@dataclass
class Call:
    """One request the SDK sent."""

    method: str
    path: str
    body: Any
    headers: Mapping[str, str]

    @property
    def kind(self) -> str:
        """What the request addresses: workspace, endpoint, deployments, deployment or operation."""
        if "mfeOperationsStatus" in self.path:
            return "operation"
        if re.search(r"/onlineEndpoints/[^/]+/deployments/[^/]+$", self.path):
            return "deployment"
        if self.path.endswith("/deployments"):
            return "deployments"
        if "/onlineEndpoints/" in self.path:
            return "endpoint"
        return "workspace"


@dataclass
class Fault:
    """A recorded error answer for one (method, kind) of request."""

    status: int
    body_file: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeArm(requests.adapters.BaseAdapter):
    """Stateful fake of the ARM calls azure-ai-ml makes for online endpoints, answering from recordings.

    Like ARM it applies a PUT only when its async operation succeeds, and it rejects traffic that does not
    sum to 100 or names a missing deployment with 400 (so a validation bug here could not hide).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.endpoint: dict[str, Any] = recording("endpoint-get.json")
        self.deployments: dict[str, Any] = recording("deployments-list.json")
        self.faults: dict[tuple[str, str], Fault] = {}
        self.operation_steps = ["operation-inprogress.json", "operation-succeeded.json"]
        self.connection_error = False
        self._pending: dict[str, Any] | None = None
        self._step = 0

    def fail(self, method: str, kind: str, fault: Fault) -> None:
        """Answer the next ``fault.times`` (method, kind) requests with ``fault``."""
        self.faults[(method, kind)] = fault

    def puts(self) -> list[Call]:
        """The PUT requests sent so far."""
        return [c for c in self.calls if c.method == "PUT"]

    # ---- requests adapter API
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        body = json.loads(request.body) if request.body else None
        call = Call(request.method or "", urlsplit(url).path, body, dict(request.headers))
        self.calls.append(call)
        if self.connection_error:
            raise requests.ConnectionError("connection reset by peer")
        fault = self.faults.get((call.method, call.kind))
        if fault and fault.times > 0:
            fault.times -= 1
            return self._reply(request, fault.status, recording(fault.body_file), fault.headers)
        return self._route(request, call)

    def close(self) -> None:
        pass

    # ---- ARM behaviour
    def _route(self, request: requests.PreparedRequest, call: Call) -> requests.Response:
        name = self.endpoint["name"]
        ep_path = f"{WS_PATH}/onlineEndpoints/{name}"
        if call.kind == "workspace" and call.method == "GET" and call.path.endswith(WS_PATH):
            return self._reply(request, 200, recording("workspace-get.json"))
        if call.kind == "operation":
            return self._operation(request)
        if not call.path.startswith(ep_path + "/") and call.path != ep_path:
            return self._not_found(request, call)
        if call.kind == "deployments":
            return self._reply(request, 200, self.deployments)
        if call.kind == "deployment":
            wanted = call.path.rsplit("/", 1)[1]
            for item in self.deployments["value"]:
                if item["name"] == wanted:
                    return self._reply(request, 200, item)
            return self._not_found(request, call)
        if call.method == "GET":
            return self._reply(request, 200, self.endpoint)
        if call.method == "PUT":
            return self._put(request, call.body)
        return self._reply(request, 405, {"error": {"code": "MethodNotAllowed", "message": call.method}})

    def _not_found(self, request: requests.PreparedRequest, call: Call) -> requests.Response:
        body = recording("error-endpoint-not-found.json")
        body["error"]["message"] = body["error"]["message"].replace(
            "support-chat", call.path.rsplit("/", 1)[1]
        )
        return self._reply(request, 404, body)

    def _put(self, request: requests.PreparedRequest, body: dict[str, Any]) -> requests.Response:
        props = body["properties"]
        names = {d["name"] for d in self.deployments["value"]}
        traffic, mirror = props.get("traffic", {}), props.get("mirrorTraffic", {})
        if sum(traffic.values()) not in (0, 100) or not (traffic.keys() | mirror.keys()) <= names:
            return self._reply(request, 400, recording("error-bad-request.json"))
        self._pending, self._step = {"traffic": traffic, "mirrorTraffic": mirror}, 0
        answer = recording("endpoint-put-201.json")
        answer["properties"].update(self._pending)
        return self._reply(request, 201, answer, {"Azure-AsyncOperation": OPERATION_URL})

    def _operation(self, request: requests.PreparedRequest) -> requests.Response:
        step = self.operation_steps[min(self._step, len(self.operation_steps) - 1)]
        self._step += 1
        status = recording(step)
        if status["status"] == "Succeeded" and self._pending is not None:
            self.endpoint["properties"].update(self._pending)
            self._pending = None
        return self._reply(request, 200, status)

    @staticmethod
    def _reply(
        request: requests.PreparedRequest, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.request, response.reason = (
            status,
            request.url,
            request,
            "x",
        )
        response.headers = requests.structures.CaseInsensitiveDict(
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        )
        response.raw = io.BytesIO(json.dumps(body).encode())
        return response


class StaticTokenCredential:
    """A TokenCredential handing out one fixed azure-core AccessToken (the credential, not what is tested)."""

    def __init__(self, token: str = "recorded-token", fail: bool = False) -> None:
        self.token, self.fail = token, fail

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.fail:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
        return AccessToken(self.token, int(time.time()) + 3600)


def make_client(arm: FakeArm, credential: Any | None = None) -> Any:
    """A real MLClient whose HTTP goes to ``arm``; no retries and no poll delay so tests stay fast."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from azure.ai.ml import MLClient

    session = requests.Session()
    session.mount("https://", arm)
    return MLClient(
        credential or StaticTokenCredential(),
        SUB,
        RG,
        WS,
        enable_telemetry=False,
        transport=RequestsTransport(session=session, session_owner=False),
        polling_interval=0,
        retry_total=0,
    )


@pytest.fixture
def arm() -> FakeArm:
    return FakeArm()


@pytest.fixture
def router(arm: FakeArm) -> AmlEndpointRouter:
    return AmlEndpointRouter(make_client(arm))


# ------------------------------------------------------------------------------------------ read


def test_router_satisfies_the_traffic_router_protocol(router: AmlEndpointRouter) -> None:
    assert isinstance(router, TrafficRouter)


def test_read_reports_every_deployment_with_zero_for_those_without_traffic(
    router: AmlEndpointRouter, arm: FakeArm
) -> None:
    route = router.read("support-chat")

    assert route == RouteWeights(weights={"blue": 100, "green": 0}, mirror={})
    assert [(c.method, c.kind) for c in arm.calls] == [("GET", "endpoint"), ("GET", "deployments")]
    assert arm.calls[0].headers["Authorization"] == "Bearer recorded-token"


def test_read_maps_the_app_to_its_endpoint(arm: FakeArm) -> None:
    router = AmlEndpointRouter(make_client(arm), endpoint_for={"support": "support-chat"})

    assert router.read("support").weights["blue"] == 100
    with pytest.raises(ConfigError, match="app 'billing' has no Azure ML endpoint configured"):
        router.read("billing")


def test_read_of_a_missing_endpoint_names_it(router: AmlEndpointRouter) -> None:
    with pytest.raises(
        DeploymentNotFoundError, match="online endpoint 'faq-bot' not found in workspace"
    ) as info:
        router.read("faq-bot")
    assert info.value.status_code == 404
    assert info.value.context["endpoint"] == "faq-bot"


# ------------------------------------------------------------------------------------------- set


def test_set_sends_lower_cased_keys_and_waits_for_the_operation(
    router: AmlEndpointRouter, arm: FakeArm
) -> None:
    result = router.set("support-chat", {"Blue": 90, "GREEN": 10})

    (put,) = arm.puts()
    assert put.path.endswith("/onlineEndpoints/support-chat")
    assert put.body["location"] == "eastus2"
    assert put.body["properties"]["traffic"] == {"blue": 90, "green": 10}
    assert put.body["properties"]["mirrorTraffic"] == {}
    # the endpoint's other settings survive the read-modify-write
    assert put.body["properties"]["authMode"] == "Key"
    assert put.body["tags"] == {"app": "support-chat"}
    kinds = [(c.method, c.kind) for c in arm.calls]
    assert kinds[kinds.index(("PUT", "endpoint")) :] == [
        ("PUT", "endpoint"),
        ("GET", "operation"),  # InProgress
        ("GET", "operation"),  # Succeeded
        ("GET", "endpoint"),  # the LRO's final read
    ]
    assert result == RouteWeights(weights={"blue": 90, "green": 10})
    router.verify("support-chat", RouteWeights(weights={"blue": 90, "green": 10}))


def test_set_drops_zero_entries(router: AmlEndpointRouter, arm: FakeArm) -> None:
    router.set("support-chat", {"blue": 0, "green": 100})

    assert arm.puts()[0].body["properties"]["traffic"] == {"green": 100}
    assert router.read("support-chat").weights == {"green": 100, "blue": 0}


def test_set_mirror_then_clear_it_with_weights_alone(router: AmlEndpointRouter, arm: FakeArm) -> None:
    shadowed = router.set("support-chat", {"blue": 100}, mirror={"Green": 50})
    assert arm.puts()[0].body["properties"]["mirrorTraffic"] == {"green": 50}
    assert shadowed.mirror == {"green": 50}
    assert router.read("support-chat") == RouteWeights(weights={"blue": 100}, mirror={"green": 50})

    router.set("support-chat", {"blue": 100})
    assert arm.puts()[1].body["properties"]["mirrorTraffic"] == {}
    assert router.read("support-chat").mirror == {}


ACCEPTED = [
    pytest.param({"blue": 100}, None, {"blue": 100}, {}, id="all-on-one"),
    pytest.param({"blue": 99, "green": 1}, None, {"blue": 99, "green": 1}, {}, id="one-percent-canary"),
    pytest.param({"blue": 0, "green": 100}, {}, {"green": 100}, {}, id="zero-dropped"),
    pytest.param({"BLUE": 100}, {"Green": 50}, {"blue": 100}, {"green": 50}, id="mirror-at-cap-50"),
    pytest.param({"blue": 100}, {"green": 0}, {"blue": 100}, {}, id="zero-mirror-is-no-mirror"),
    pytest.param(
        {"blue": 50, "green": 50, "red": 0}, {"red": 1}, {"blue": 50, "green": 50}, {"red": 1}, id="third"
    ),
]


@pytest.mark.parametrize(("weights", "mirror", "live", "shadow"), ACCEPTED)
def test_normalize_route_accepts(
    weights: dict[str, int], mirror: dict[str, int] | None, live: dict[str, int], shadow: dict[str, int]
) -> None:
    assert normalize_route(weights, mirror, endpoint="ep") == RouteWeights(weights=live, mirror=shadow)


REFUSED = [
    pytest.param({"blue": 90, "green": 9}, None, "weights sum to 99, must be exactly 100", id="sum-99"),
    pytest.param({"blue": 90, "green": 11}, None, "weights sum to 101", id="sum-101"),
    pytest.param({"blue": 0, "green": 0}, None, "weights sum to 0", id="sum-0-would-take-app-offline"),
    pytest.param({}, None, "weights sum to 0", id="empty"),
    pytest.param({"blue": 101}, None, "traffic.blue: 101 is outside 0..100", id="over-100"),
    pytest.param({"blue": 110, "green": -10}, None, "traffic.green: -10 is outside 0..100", id="negative"),
    pytest.param({"blue": 50.0, "green": 50}, None, "traffic.blue: 50.0 is not an integer", id="float"),
    pytest.param({"blue": True, "green": 99}, None, "traffic.blue: True is not an integer", id="bool"),
    pytest.param({"blue": "100"}, None, "traffic.blue: '100' is not an integer", id="string"),
    pytest.param(
        {"Blue": 50, "blue": 50}, None, "'Blue' and 'blue' name the same deployment", id="case-clash"
    ),
    pytest.param({"": 100}, None, "deployment name '' is not a non-empty string", id="empty-name"),
    pytest.param(
        {"blue": 100}, {"green": 51}, "mirror_traffic: sums to 51, Azure allows at most 50", id="mirror-51"
    ),
    pytest.param(
        {"blue": 100}, {"green": 10, "red": 10}, "Azure mirrors to one deployment only", id="mirror-two"
    ),
    pytest.param(
        {"blue": 90, "green": 10},
        {"green": 10},
        "mirror_traffic.green: also takes 10 % live",
        id="live-and-mirror",
    ),
    pytest.param(
        {"blue": 100}, {"green": -1}, "mirror_traffic.green: -1 is outside 0..100", id="mirror-negative"
    ),
]


@pytest.mark.parametrize(("weights", "mirror", "message"), REFUSED)
def test_set_refuses_invalid_traffic_before_any_request(
    router: AmlEndpointRouter,
    arm: FakeArm,
    weights: dict[str, Any],
    mirror: dict[str, Any] | None,
    message: str,
) -> None:
    with pytest.raises(RouterInvariantError, match=re.escape(message)) as info:
        router.set("support-chat", weights, mirror)

    assert "endpoint 'support-chat' refused, nothing was changed" in str(info.value)
    assert arm.calls == []


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RouterInvariantError) as info:
        normalize_route({"blue": 101, "green": 1.5}, {"red": True}, endpoint="ep")  # type: ignore[dict-item]
    assert len(info.value.context["problems"]) == 3


@pytest.mark.parametrize(
    ("weights", "mirror", "unknown"),
    [
        pytest.param({"blue": 90, "canary": 10}, None, "'canary'", id="live"),
        pytest.param({"blue": 100}, {"shadow": 10}, "'shadow'", id="mirror"),
    ],
)
def test_set_refuses_unknown_deployments_after_listing_them(
    router: AmlEndpointRouter,
    arm: FakeArm,
    weights: dict[str, int],
    mirror: dict[str, int] | None,
    unknown: str,
) -> None:
    with pytest.raises(
        DeploymentNotFoundError, match=f"no deployment {unknown} under endpoint 'support-chat'"
    ) as info:
        router.set("support-chat", weights, mirror)

    assert "it has ['blue', 'green']" in str(info.value)
    assert [(c.method, c.kind) for c in arm.calls] == [("GET", "deployments")]


def test_set_on_a_missing_endpoint_names_it(router: AmlEndpointRouter, arm: FakeArm) -> None:
    with pytest.raises(
        DeploymentNotFoundError, match="online endpoint 'faq-bot' not found in workspace 'rg-genai/ws-genai'"
    ):
        router.set("faq-bot", {"blue": 100})
    assert arm.puts() == []


# ------------------------------------------------------------------------------------ failures


def test_expired_token_is_an_auth_error_naming_the_credential(
    router: AmlEndpointRouter, arm: FakeArm
) -> None:
    arm.fail("GET", "endpoint", Fault(401, "error-auth-expired.json"))

    with pytest.raises(AuthError, match="refused the credential StaticTokenCredential") as info:
        router.read("support-chat")
    assert info.value.code == "ExpiredAuthenticationToken"
    assert "az login" in str(info.value)


def test_missing_role_on_put_is_an_auth_error(router: AmlEndpointRouter, arm: FakeArm) -> None:
    arm.fail("PUT", "endpoint", Fault(403, "error-authorization-failed.json"))

    with pytest.raises(
        AuthError, match=r"denied StaticTokenCredential on workspace 'rg-genai/ws-genai' \(403 Auth"
    ) as info:
        router.set("support-chat", {"blue": 50, "green": 50})
    assert info.value.status_code == 403
    assert not info.value.retryable


def test_a_credential_that_cannot_get_a_token_is_an_auth_error(arm: FakeArm) -> None:
    router = AmlEndpointRouter(make_client(arm, StaticTokenCredential(fail=True)))

    with pytest.raises(AuthError, match="StaticTokenCredential"):
        router.read("support-chat")
    assert arm.calls == []


def test_throttling_carries_the_wait_azure_asked_for(router: AmlEndpointRouter, arm: FakeArm) -> None:
    arm.fail("PUT", "endpoint", Fault(429, "error-throttled.json", {"Retry-After": "17"}))

    with pytest.raises(ThrottledError) as info:
        router.set("support-chat", {"blue": 50, "green": 50})
    assert info.value.retry_after == 17.0
    assert info.value.retryable
    assert info.value.code == "TooManyRequests"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(router: AmlEndpointRouter, arm: FakeArm, status: int) -> None:
    arm.fail("GET", "endpoint", Fault(status, "error-internal.json"))

    with pytest.raises(TransientPlatformError, match=f"failed with {status}") as info:
        router.read("support-chat")
    assert info.value.retryable


def test_connection_reset_is_transient(router: AmlEndpointRouter, arm: FakeArm) -> None:
    arm.connection_error = True

    with pytest.raises(TransientPlatformError, match="could not reach Azure ML"):
        router.read("support-chat")


def test_arm_rejecting_the_put_is_a_bad_request_with_its_code(
    router: AmlEndpointRouter, arm: FakeArm
) -> None:
    arm.fail("PUT", "endpoint", Fault(400, "error-bad-request.json"))

    with pytest.raises(BadRequestError, match="rejected the request for endpoint 'support-chat'") as info:
        router.set("support-chat", {"blue": 50, "green": 50})
    assert info.value.code == "BadArgument"


def test_a_failed_operation_leaves_the_old_weights(router: AmlEndpointRouter, arm: FakeArm) -> None:
    arm.operation_steps = ["operation-inprogress.json", "operation-failed.json"]

    with pytest.raises(OperationFailedError, match="DeploymentNotReady"):
        router.set("support-chat", {"blue": 50, "green": 50})
    assert router.read("support-chat").weights == {"blue": 100, "green": 0}


# ---------------------------------------------------------------------------------------- verify


def test_verify_ignores_zero_entries_and_case(router: AmlEndpointRouter) -> None:
    router.verify("support-chat", RouteWeights(weights={"BLUE": 100}))
    router.verify("support-chat", RouteWeights(weights={"blue": 100, "green": 0}, mirror={"green": 0}))


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(RouteWeights(weights={"blue": 90, "green": 10}), id="weights-differ"),
        pytest.param(RouteWeights(weights={"blue": 100}, mirror={"green": 10}), id="mirror-differs"),
    ],
)
def test_verify_raises_when_the_endpoint_serves_something_else(
    router: AmlEndpointRouter, expected: RouteWeights
) -> None:
    with pytest.raises(
        RouterInvariantError, match=r"endpoint 'support-chat' serves traffic=\{'blue': 100\}"
    ) as info:
        router.verify("support-chat", expected)
    assert info.value.context["actual"] == {"traffic": {"blue": 100}, "mirror": {}}


def test_verify_detects_a_change_made_behind_our_back(router: AmlEndpointRouter, arm: FakeArm) -> None:
    applied = router.set("support-chat", {"blue": 75, "green": 25})
    arm.endpoint["properties"]["traffic"] = {"blue": 100}  # someone used the portal

    with pytest.raises(RouterInvariantError, match="someone else changed it"):
        router.verify("support-chat", applied)


# ----------------------------------------------------------------------------------- deployments


def test_deployments_list_and_get(arm: FakeArm) -> None:
    deployments = AmlDeployments(make_client(arm))

    listed = deployments.list("support-chat")
    assert [d.name for d in listed] == ["blue", "green"]
    green = deployments.get("support-chat", "green")
    assert green == listed[1]
    assert green == OnlineDeploymentInfo(
        name="green",
        endpoint="support-chat",
        model="azureml://registries/azureml/models/Phi-4-mini-instruct/versions/1",
        instance_type="Standard_NC24ads_A100_v4",
        instance_count=1,
        provisioning_state=ProvisioningState.SUCCEEDED,
    )


def test_deployments_get_of_a_missing_deployment_names_it(arm: FakeArm) -> None:
    with pytest.raises(
        DeploymentNotFoundError, match="no deployment 'red' under endpoint 'support-chat'"
    ) as info:
        AmlDeployments(make_client(arm)).get("support-chat", "red")
    assert info.value.context["deployment"] == "red"


def test_deployments_of_a_missing_endpoint(arm: FakeArm) -> None:
    with pytest.raises(DeploymentNotFoundError, match="'faq-bot'"):
        AmlDeployments(make_client(arm)).list("faq-bot")
