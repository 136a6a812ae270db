"""What JSM Ops' integration-events API accepts: the request routes, the `GenieKey` header, and the bodies of create
and of the alert actions (close, acknowledge, unacknowledge, add note), checked against the documented contract.

Sources: developer.atlassian.com JSM Ops REST "integration events" (create/acknowledge/close/add note by
`identifierType=alias|id|tiny`, `Authorization: GenieKey <key>`, asynchronous `AsyncSuccessResponse`); the Opsgenie
Alert API it succeeds for the field limits and the answers' shapes (opsgenie/opsgenie-oas `definitions/alert.yaml`:
`CreateAlertPayload`, `details` a map of strings, `priority` P1–P5; docs.opsgenie.com "Alert API": message ≤130,
alias ≤512, description ≤15000, ≤20 tags of ≤50, details ≤8000 characters, entity ≤512, source ≤100, user ≤100,
note ≤25000; 202 `{"result": "Request will be processed", "took", "requestId"}`; 422 `{"message": "Request body is
not processable. Please check the errors.", "errors": {field: reason}, "took", "requestId"}` as quoted in
opsgenie/opsgenie-go-sdk-v2's client tests). Where Atlassian documents no body (401, 404, 429) the wording here is
this stand-in's own, in the same `{message, took, requestId}` shape. Unknown fields are refused here (JSM ignores
them): stricter, to catch a misspelt field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ALERTS_PATH = "/jsm/ops/integration/v2/alerts"
ACTIONS = ("close", "acknowledge", "unacknowledge", "notes")  # the path's last segment; `notes` adds a note
IDENTIFIER_TYPES = ("id", "alias", "tiny")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15000
MAX_TAGS = 20
MAX_TAG = 50
MAX_ACTIONS = 10
MAX_ACTION = 50
MAX_DETAILS_CHARS = 8000  # keys and values together (the conservative reading of "8000 characters")
MAX_ENTITY = 512
MAX_SOURCE = 100
MAX_USER = 100
MAX_NOTE = 25000
MAX_RESPONDERS = 50
MAX_BODY_BYTES = 1024 * 1024  # none documented; a body within every field limit is far below this

ACCEPTED_RESULT = "Request will be processed"
UNPROCESSABLE_MESSAGE = "Request body is not processable. Please check the errors."
UNAUTHORIZED_MESSAGE = "Could not authenticate"  # this stand-in's wording
THROTTLED_MESSAGE = "You are making too many requests! To avoid errors, we recommend you limit requests."

_CREATE_KEYS = frozenset(
    {
        "message",
        "alias",
        "description",
        "responders",
        "visibleTo",
        "actions",
        "tags",
        "details",
        "entity",
        "source",
        "priority",
        "user",
        "note",
    }
)
_ACTION_KEYS = frozenset({"user", "source", "note"})


@dataclass(frozen=True)
class Route:
    """A request's target: `create`, or an action on the alert `identifier` (of `identifier_type`)."""

    action: str  # "create" | one of ACTIONS
    identifier: str = ""
    identifier_type: str = "id"


def parse_route(method: str, target: str) -> Route | str:
    """The route of `method target` (the request line's path and query), or why it matches none (a 404)."""
    parts = urlsplit(target)
    path = parts.path
    if method != "POST":
        return f"No route for {method} {path}"
    if path == ALERTS_PATH:
        return Route("create")
    if not path.startswith(ALERTS_PATH + "/"):
        return f"No route for {method} {path}"
    rest = path[len(ALERTS_PATH) + 1 :].split("/")
    if len(rest) != 2 or not rest[0] or rest[1] not in ACTIONS:
        return f"No route for {method} {path}"
    query = parse_qs(parts.query)
    identifier_type = query.get("identifierType", ["id"])[0]
    if identifier_type not in IDENTIFIER_TYPES:
        return f"identifierType must be one of {', '.join(IDENTIFIER_TYPES)} (got {identifier_type!r})"
    return Route(rest[1], unquote(rest[0]), identifier_type)


def api_key_problem(headers: dict[str, str], api_keys: set[str] | None) -> str | None:
    """None when `Authorization: GenieKey <key>` names an accepted key (any non-blank key if `api_keys` is None)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None:
        return "Authorization header is missing"
    scheme, _, key = value.partition(" ")
    if scheme != "GenieKey" or not key.strip():
        return "Authorization must be 'GenieKey <api key>'"
    if api_keys is not None and key.strip() not in api_keys:
        return UNAUTHORIZED_MESSAGE
    return None


# --------------------------------------------------------------------------- bodies


def _string(body: dict[str, Any], key: str, limit: int, errors: dict[str, str], *, required: bool = False) -> None:
    if key not in body:
        if required:
            errors[key] = f"{key.capitalize()} can not be empty."
        return
    value = body[key]
    if not isinstance(value, str):
        errors[key] = f"{key} must be a string"
    elif required and not value.strip():
        errors[key] = f"{key.capitalize()} can not be empty."
    elif len(value) > limit:
        errors[key] = f"{key} can not be longer than {limit} characters (got {len(value)})"


def _strings(body: dict[str, Any], key: str, count: int, limit: int, errors: dict[str, str]) -> None:
    if key not in body:
        return
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[key] = f"{key} must be a list of strings"
    elif len(value) > count:
        errors[key] = f"at most {count} {key} (got {len(value)})"
    elif any(len(v) > limit for v in value):
        errors[key] = f"each of {key} can be at most {limit} characters"


def _details(body: dict[str, Any], errors: dict[str, str]) -> None:
    if "details" not in body:
        return
    details = body["details"]
    if not isinstance(details, dict):
        errors["details"] = "details must be a map of strings"
        return
    not_strings = sorted(k for k, v in details.items() if not isinstance(v, str))
    if not_strings:
        errors["details"] = f"details values must be strings (not: {', '.join(not_strings)})"
        return
    total = sum(len(k) + len(v) for k, v in details.items())
    if total > MAX_DETAILS_CHARS:
        errors["details"] = f"details can not be longer than {MAX_DETAILS_CHARS} characters (got {total})"


def _responders(body: dict[str, Any], key: str, errors: dict[str, str]) -> None:
    if key not in body:
        return
    value = body[key]
    if not isinstance(value, list) or len(value) > MAX_RESPONDERS:
        errors[key] = f"{key} must be a list of at most {MAX_RESPONDERS} recipients"
        return
    for i, r in enumerate(value):
        if not isinstance(r, dict) or r.get("type") not in RESPONDER_TYPES:
            errors[f"{key}#type"] = f"Invalid recipient type at {i}"
        elif not any(isinstance(r.get(k), str) and r[k] for k in ("id", "name", "username")):
            errors[f"{key}#id"] = f"recipient {i} needs an id, name or username"


def create_errors(body: Any) -> dict[str, str]:
    """Every contract error of a create body, by field (empty: valid)."""
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    errors: dict[str, str] = {k: "unknown field" for k in sorted(set(body) - _CREATE_KEYS)}
    _string(body, "message", MAX_MESSAGE, errors, required=True)
    _string(body, "alias", MAX_ALIAS, errors)
    _string(body, "description", MAX_DESCRIPTION, errors)
    _string(body, "entity", MAX_ENTITY, errors)
    _string(body, "source", MAX_SOURCE, errors)
    _string(body, "user", MAX_USER, errors)
    _string(body, "note", MAX_NOTE, errors)
    _strings(body, "tags", MAX_TAGS, MAX_TAG, errors)
    _strings(body, "actions", MAX_ACTIONS, MAX_ACTION, errors)
    _details(body, errors)
    _responders(body, "responders", errors)
    _responders(body, "visibleTo", errors)
    if "priority" in body and body["priority"] not in PRIORITIES:
        errors["priority"] = f"priority must be one of {', '.join(PRIORITIES)} (got {body['priority']!r})"
    return errors


def action_errors(action: str, body: Any) -> dict[str, str]:
    """Every contract error of an alert action's body (close, acknowledge, unacknowledge, notes)."""
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    errors: dict[str, str] = {k: "unknown field" for k in sorted(set(body) - _ACTION_KEYS)}
    _string(body, "user", MAX_USER, errors)
    _string(body, "source", MAX_SOURCE, errors)
    _string(body, "note", MAX_NOTE, errors, required=action == "notes")
    return errors


def validate_request(
    method: str, url: str, headers: dict[str, str], body: Any, api_keys: set[str] | None = None
) -> list[str]:
    """Every contract error of one request as a client would send it (empty: JSM would accept it)."""
    parts = urlsplit(url)
    route = parse_route(method, parts.path + (f"?{parts.query}" if parts.query else ""))
    if isinstance(route, str):
        return [route]
    problems: list[str] = []
    problem = api_key_problem(headers, api_keys)
    if problem is not None:
        problems.append(problem)
    errors = create_errors(body) if route.action == "create" else action_errors(route.action, body)
    return problems + [f"{field}: {reason}" for field, reason in errors.items()]
