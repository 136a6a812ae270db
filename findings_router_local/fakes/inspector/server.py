"""`InspectorStandIn`: Amazon Inspector and Security Hub, as far as a PSIRT report asks them, on 127.0.0.1.

One `--endpoint-url` serves both services; requests are routed by path (rest-json, all POST):

* `/findings/list` — inspector2 `ListFindings`: `filterCriteria` applied (`filters.inspector_matcher`), at most 25
  findings a page whatever `maxResults` (1–100) says, an opaque `nextToken` tied to the query;
* `/findings/aggregation/list` — inspector2 `ListFindingAggregations`, TITLE only (per title, id and account);
* `/findingsv2` — securityhub `GetFindingsV2` (OCSF), `Filters` applied (`filters.v2_matcher`), 1–100 a page;
* `/findings` — securityhub `GetFindings` (ASFF), `Filters` applied (`filters.v1_matcher`), 1–100 a page.

Each service answers for the Region the request is signed for (SigV4 credential scope), as the real ones do; a
Security Hub `aggregator_region` answers for every Region. Errors are the services' own: the error code in
`x-amzn-ErrorType` and a JSON body (`message` for Inspector, `Message`/`Code` for Security Hub). Faults: `throttle(n)`
answers the next n calls 429 ThrottlingException (Security Hub v1: TooManyRequestsException), `deny(service)`
403 AccessDeniedException, `v2_enabled=False` makes GetFindingsV2 answer 400 ValidationException (an assumption:
the real message for "v2 not enabled" is not documented), `securityhub_enabled=False` InvalidAccessException (401).
`calls` counts the requests per operation, retries included.

`attach(client)` serves a boto3 client in-process instead (botocore's `before-send` event, no socket), for unit tests
and benches that must not open one; the answer is the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from findings_router_local.fakes.inspector import dataset
from findings_router_local.fakes.inspector.filters import FilterProblem, inspector_matcher, v1_matcher, v2_matcher
from findings_router_local.fakes.service import ReceivedRequest, StandIn, header
from findings_router_local.loopback_http import Answer

INSPECTOR_PAGE_MAX = 25  # FindingList: max 25
PAGE_MAX = 100
ROUTES = {
    "/findings/list": ("inspector2", "ListFindings"),
    "/findings/aggregation/list": ("inspector2", "ListFindingAggregations"),
    "/findingsv2": ("securityhub", "GetFindingsV2"),
    "/findings": ("securityhub", "GetFindings"),
}
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
THROTTLING_MESSAGE = "The limit on the number of requests per second was exceeded"


@dataclass(frozen=True)
class AwsError:
    status: int
    code: str
    message: str


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()  # rest-json timestamps: epoch seconds
    raise TypeError(f"not JSON: {type(value).__name__}")


def _dumps(body: Any) -> bytes:
    return json.dumps(body, default=_json_default, separators=(",", ":")).encode()


def _token(offset: int, request: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(json.dumps({"offset": offset, "query": digest}).encode()).decode()


def _offset(token: Any, request: Mapping[str, Any]) -> int:
    if token is None:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = int(decoded["offset"])
    except (ValueError, KeyError, TypeError):
        raise FilterProblem("the nextToken is not valid") from None
    expected = json.loads(base64.urlsafe_b64decode(_token(offset, request).encode()))["query"]
    if decoded.get("query") != expected:
        raise FilterProblem("the nextToken does not belong to this request")
    return offset


class InspectorStandIn(StandIn[tuple[str, dict[str, Any]], tuple[str, str]]):
    """Inspector and Security Hub over `findings` (Inspector's shape; Security Hub's copies are derived from them,
    `dataset.asff_of` / `ocsf_of`). `accepted`: (operation, request body) of every answered call; `rejected`:
    (operation, error message) of the calls refused as invalid."""

    def __init__(
        self,
        findings: list[dict[str, Any]] | None = None,
        *,
        v2_enabled: bool = True,
        securityhub_enabled: bool = True,
        aggregator_region: str | None = None,
        securityhub_extra_v1: list[dict[str, Any]] | None = None,
        securityhub_extra_v2: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(name="inspector-stand-in")
        # (operation, region, query, data generation) → the matching findings: a paginated query is filtered once,
        # not once a page (10,000 findings are 400 pages of 25). Replacing `findings`, `asff` or `ocsf` starts anew.
        self._matched: dict[tuple[str, str | None, str, int], list[dict[str, Any]]] = {}
        self._generation = 0
        self.findings = list(findings if findings is not None else dataset.log4shell_estate())
        self.asff = [dataset.asff_of(f) for f in self.findings] + list(securityhub_extra_v1 or [])
        self.ocsf = [dataset.ocsf_of(f) for f in self.findings] + list(securityhub_extra_v2 or [])
        self.v2_enabled = v2_enabled
        self.securityhub_enabled = securityhub_enabled
        self.aggregator_region = aggregator_region
        self._calls: Counter[str] = Counter()
        self._throttle: list[str | None] = []  # per queued throttle: the service it applies to (None: any)
        self._denied: set[str] = set()

    # ---- the data (Inspector's findings; Security Hub's ASFF and OCSF copies)

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self._findings

    @findings.setter
    def findings(self, value: list[dict[str, Any]]) -> None:
        self._findings = value
        self._renew()

    @property
    def asff(self) -> list[dict[str, Any]]:
        return self._asff

    @asff.setter
    def asff(self, value: list[dict[str, Any]]) -> None:
        self._asff = value
        self._renew()

    @property
    def ocsf(self) -> list[dict[str, Any]]:
        return self._ocsf

    @ocsf.setter
    def ocsf(self, value: list[dict[str, Any]]) -> None:
        self._ocsf = value
        self._renew()

    def _renew(self) -> None:
        self._generation += 1
        self._matched.clear()

    # ---- faults and counts

    def throttle(self, count: int, service: str | None = None) -> None:
        """Answer the next `count` calls (of `service`, when given) 429 ThrottlingException."""
        with self._lock:
            self._throttle.extend([service] * count)

    def deny(self, *services: str) -> None:
        """Answer every call of these services (inspector2, securityhub) 403 AccessDeniedException."""
        with self._lock:
            self._denied.update(services)

    @property
    def calls(self) -> Counter[str]:
        """Requests received per operation (`inspector2:ListFindings`, …), retries and refusals included."""
        with self._lock:
            return Counter(self._calls)

    def _forget(self) -> None:
        self._matched.clear()
        self._calls.clear()
        self._throttle.clear()
        self._denied.clear()

    # ---- in-process transport

    def attach(self, client: Any) -> Any:
        """Serve `client` in-process (no socket): botocore's `before-send` hands every request to this stand-in.
        Returns the client."""
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectionClosedError

        class _Raw:
            def __init__(self, body: bytes) -> None:
                self.body = body

            def stream(self, **_: Any) -> Any:
                yield self.body

        def send(request: Any, **_: Any) -> Any:
            from urllib.parse import urlsplit

            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            elif not isinstance(body, bytes):
                body = body.read()
            headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
            path = urlsplit(request.url).path
            answer = self.handle_request(request.method, path, headers, body, None)
            if answer is None:
                raise ConnectionClosedError(endpoint_url=request.url)
            response_headers = {"Content-Type": answer.content_type, **answer.headers}
            headers_arg: Any = response_headers
            return AWSResponse(request.url, answer.status, headers_arg, _Raw(answer.body))

        # One registration per stand-in and client: attaching twice changes nothing.
        client.meta.events.register("before-send", send, unique_id=f"inspector-stand-in-{id(self)}")
        return client

    # ---- request handling (the lock is held)

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        route = ROUTES.get(record.path.split("?", 1)[0])
        if record.method != "POST" or route is None:
            return self._error(
                "?", AwsError(404, "UnknownOperationException", f"no operation at {record.method} {record.path}")
            )
        service, operation = route
        name = f"{service}:{operation}"
        self._calls[name] += 1
        region, signed_for = self._scope(record)
        if signed_for is not None and signed_for != service:
            return self._error(name, AwsError(400, "InvalidSignatureException", f"signed for {signed_for}"))
        fault = self._fault(service, operation)
        if fault is not None:
            return self._error(name, fault)
        if problem is not None:
            return self._error(name, AwsError(413, "ValidationException", problem))
        try:
            body = json.loads(record.body) if record.body else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._error(name, AwsError(400, "SerializationException", "the body is not a JSON object"))
        record.json = body
        handler: Callable[[dict[str, Any], str | None], dict[str, Any]] = {
            "ListFindings": self._list_findings,
            "ListFindingAggregations": self._aggregations,
            "GetFindingsV2": self._get_findings_v2,
            "GetFindings": self._get_findings,
        }[operation]
        try:
            answer = handler(body, region)
        except FilterProblem as exc:
            code = "InvalidInputException" if operation == "GetFindings" else "ValidationException"
            return self._error(name, AwsError(400, code, str(exc)))
        self._accepted.append((name, body))
        return Answer(200, _dumps(answer))

    def _scope(self, record: ReceivedRequest) -> tuple[str | None, str | None]:
        """(region, service) of the SigV4 credential scope; (None, None) for an unsigned request."""
        match = SCOPE.search(header(record.headers, "Authorization") or "")
        return (match.group(1), match.group(2)) if match else (None, None)

    def _fault(self, service: str, operation: str) -> AwsError | None:
        for i, target in enumerate(self._throttle):
            if target is None or target == service:
                del self._throttle[i]
                if service == "securityhub" and operation == "GetFindings":
                    return AwsError(429, "TooManyRequestsException", "Rate exceeded")
                return AwsError(429, "ThrottlingException", THROTTLING_MESSAGE)
        if service in self._denied:
            action = "GetFindings" if service == "securityhub" else operation
            return AwsError(
                403,
                "AccessDeniedException",
                f"User: arn:aws:sts::111122223333:assumed-role/psirt-oncall/ada is not authorized to perform: "
                f"{service}:{action}",
            )
        if service == "securityhub" and not self.securityhub_enabled:
            return AwsError(401, "InvalidAccessException", "Account 111122223333 is not subscribed to AWS Security Hub")
        if operation == "GetFindingsV2" and not self.v2_enabled:
            return AwsError(400, "ValidationException", "Security Hub V2 is not enabled in this account and Region")
        return None

    def _error(self, name: str, error: AwsError) -> Answer:
        self._rejected.append((name, f"{error.code}: {error.message}"))
        securityhub = name.startswith("securityhub")
        body = {"Message": error.message, "Code": error.code} if securityhub else {"message": error.message}
        headers = {"x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/com.amazonaws.local/"}
        if error.status == 429 and not securityhub:
            headers["Retry-After"] = "0"  # ThrottlingException.retryAfterSeconds
        return Answer(error.status, _dumps(body), headers=headers)

    # ---- operations

    def _inspector_in(self, region: str | None) -> list[dict[str, Any]]:
        return [f for f in self.findings if region is None or f["findingArn"].split(":")[3] == region]

    @staticmethod
    def _page_size(body: Mapping[str, Any], key: str, *, cap: int) -> int:
        size = body.get(key, PAGE_MAX)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= PAGE_MAX:
            raise FilterProblem(f"{key} must be between 1 and {PAGE_MAX}")
        return min(size, cap)

    def _paged(
        self, items: list[Any], body: Mapping[str, Any], *, size_key: str, cursor_key: str, cap: int
    ) -> tuple[list[Any], str | None]:
        query = {k: v for k, v in body.items() if k not in (cursor_key, size_key)}
        offset = _offset(body.get(cursor_key), query)
        size = self._page_size(body, size_key, cap=cap)
        page = items[offset : offset + size]
        more = offset + size < len(items)
        return page, (_token(offset + size, query) if more else None)

    def _matching(
        self,
        operation: str,
        region: str | None,
        query: Any,
        select: Callable[[], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        key = (operation, region, json.dumps(query, sort_keys=True, default=str), self._generation)
        if key not in self._matched:
            if len(self._matched) > 64:
                self._matched.clear()
            self._matched[key] = select()
        return self._matched[key]

    def _list_findings(self, body: dict[str, Any], region: str | None) -> dict[str, Any]:
        unknown = set(body) - {"filterCriteria", "maxResults", "nextToken", "sortCriteria"}
        if unknown:
            raise FilterProblem(f"unknown members {sorted(unknown)}")
        matches = inspector_matcher(body.get("filterCriteria") or {})
        found = self._matching(
            "ListFindings",
            region,
            body.get("filterCriteria"),
            lambda: [f for f in self._inspector_in(region) if matches(f)],
        )
        page, token = self._paged(found, body, size_key="maxResults", cursor_key="nextToken", cap=INSPECTOR_PAGE_MAX)
        answer: dict[str, Any] = {"findings": page}
        if token is not None:
            answer["nextToken"] = token
        return answer

    def _aggregations(self, body: dict[str, Any], region: str | None) -> dict[str, Any]:
        if body.get("aggregationType") != "TITLE":
            raise FilterProblem("the local stand-in aggregates by TITLE only")
        request = (body.get("aggregationRequest") or {}).get("titleAggregation") or {}
        criteria: dict[str, Any] = {"findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}]}
        for key, target in (("vulnerabilityIds", "vulnerabilityId"), ("titles", "title")):
            if request.get(key):
                criteria[target] = request[key]
        if request.get("resourceType"):
            criteria["resourceType"] = [{"comparison": "EQUALS", "value": request["resourceType"]}]
        if body.get("accountIds"):
            criteria["awsAccountId"] = body["accountIds"]
        matches = inspector_matcher(criteria)
        counts: dict[tuple[str, str, str], Counter[str]] = {}
        for finding in self._inspector_in(region):
            if matches(finding):
                group = (
                    finding["title"],
                    finding["packageVulnerabilityDetails"]["vulnerabilityId"],
                    finding["awsAccountId"],
                )
                counts.setdefault(group, Counter())[finding["severity"].lower()] += 1
        responses = [
            {
                "titleAggregation": {
                    "title": title,
                    "vulnerabilityId": vid,
                    "accountId": account,
                    "severityCounts": {
                        "all": sum(c.values()),
                        **{k: c[k] for k in ("critical", "high", "medium", "low")},
                    },
                }
            }
            for (title, vid, account), c in sorted(counts.items())
        ]
        page, token = self._paged(responses, body, size_key="maxResults", cursor_key="nextToken", cap=PAGE_MAX)
        answer: dict[str, Any] = {"aggregationType": "TITLE", "responses": page}
        if token is not None:
            answer["nextToken"] = token
        return answer

    def _securityhub_region(self, region: str | None) -> str | None:
        return None if region is None or region == self.aggregator_region else region

    def _get_findings_v2(self, body: dict[str, Any], region: str | None) -> dict[str, Any]:
        if body.get("Scopes"):
            raise FilterProblem("Scopes are not implemented by the local stand-in")
        matches = v2_matcher(body.get("Filters"))
        where = self._securityhub_region(region)
        found = self._matching(
            "GetFindingsV2",
            where,
            body.get("Filters"),
            lambda: [f for f in self.ocsf if (where is None or f["cloud"]["region"] == where) and matches(f)],
        )
        page, token = self._paged(found, body, size_key="MaxResults", cursor_key="NextToken", cap=PAGE_MAX)
        answer: dict[str, Any] = {"Findings": page}
        if token is not None:
            answer["NextToken"] = token
        return answer

    def _get_findings(self, body: dict[str, Any], region: str | None) -> dict[str, Any]:
        matches = v1_matcher(body.get("Filters") or {})
        where = self._securityhub_region(region)
        found = self._matching(
            "GetFindings",
            where,
            body.get("Filters"),
            lambda: [f for f in self.asff if (where is None or f["Region"] == where) and matches(f)],
        )
        page, token = self._paged(found, body, size_key="MaxResults", cursor_key="NextToken", cap=PAGE_MAX)
        answer: dict[str, Any] = {"Findings": page}
        if token is not None:
            answer["NextToken"] = token
        return answer
