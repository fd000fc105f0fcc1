"""IAM-style policies for access keys: parse and check a document, then decide a call.

A policy is IAM's JSON document, restricted to what Rekognition's calls need:

    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": ["rekognition:Detect*"], "Resource": "*"},
                   {"Effect": "Allow", "Action": "rekognition:SearchFacesByImage",
                    "Resource": "arn:aws:rekognition:us-east-1:000000000000:collection/staff"}]}

Evaluation is IAM's: an explicit Deny that matches wins, else an Allow that matches both the action
and the resource, else the call is denied. Action patterns match case-insensitively, resource
patterns case-sensitively; both take `*` (any run of characters) and `?` (one character). A call
on no resource (DetectFaces, ListCollections) has the resource "*", which only a statement whose
Resource matches "*" covers, as in IAM for actions without resource-level permissions.

`evaluate` is pure; `authorize` names the request's resource and raises AccessDeniedException.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from opsis.errors import AccessDeniedException, ResourceNotFoundException

if TYPE_CHECKING:
    from opsis.ops.context import Context

SERVICE_PREFIX = "rekognition:"
VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource"})
NO_RESOURCE = "*"  # the resource of a call that names none


class PolicyError(ValueError):
    """A policy document Opsis cannot enforce exactly as written."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class Decision(StrEnum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]  # patterns, e.g. "rekognition:Detect*"
    resources: tuple[str, ...]  # patterns, e.g. "arn:aws:rekognition:*:*:collection/staff-*" or "*"

    def matches(self, action: str, resource: str) -> bool:
        return any(_pattern(a, True).fullmatch(action) for a in self.actions) and any(
            _pattern(r, False).fullmatch(resource) for r in self.resources
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    def document(self) -> dict[str, Any]:
        """The policy as IAM's JSON document (lists always, so it reads the same every time)."""
        return {
            "Version": VERSIONS[0],
            "Statement": [
                {"Effect": s.effect.value, "Action": list(s.actions), "Resource": list(s.resources)}
                for s in self.statements
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.document())

    def summary(self) -> str:
        """One line per statement, e.g. "Allow rekognition:SearchFacesByImage on collection/a"."""
        return "\n".join(
            f"{s.effect.value} {', '.join(s.actions)} on {', '.join(_short(r) for r in s.resources)}"
            for s in self.statements
        )


ADMINISTRATOR = Policy((Statement(Effect.ALLOW, (f"{SERVICE_PREFIX}*",), ("*",)),))


def parse_policy(text: str, known_actions: Iterable[str] = ()) -> Policy:
    """The policy in JSON `text`, or PolicyError saying what is wrong with it.

    With `known_actions` (e.g. "rekognition:DetectFaces", ...), an action pattern that matches none
    of them is refused too: a misspelt action would otherwise silently allow nothing.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(f"the policy is not valid JSON: {error}") from None
    return policy_from_document(document, known_actions)


@functools.cache
def stored_policy(text: str) -> Policy:
    """A stored key's policy (JSON written by `Policy.to_json`), parsed once per process."""
    return policy_from_document(json.loads(text))


def policy_from_document(document: object, known_actions: Iterable[str] = ()) -> Policy:
    if not isinstance(document, dict):
        raise PolicyError("the policy must be a JSON object with a Statement")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"unsupported policy element(s): {', '.join(sorted(unknown))}")
    version = document.get("Version", VERSIONS[0])
    if version not in VERSIONS:
        raise PolicyError(f"Version must be {VERSIONS[0]!r}, not {version!r}")
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise PolicyError("Statement must be an object or a non-empty list of objects")
    known = tuple(known_actions)
    return Policy(tuple(_statement(s, index, known) for index, s in enumerate(statements, 1)))


def _statement(raw: object, index: int, known: tuple[str, ...]) -> Statement:
    where = f"statement {index}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} is not a JSON object")
    unknown = set(raw) - STATEMENT_KEYS
    if unknown:
        raise PolicyError(
            f"{where}: unsupported element(s) {', '.join(sorted(unknown))} (Opsis supports Effect, Action, Resource)"
        )
    effect = raw.get("Effect")
    if effect not in (Effect.ALLOW.value, Effect.DENY.value):
        raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", not {effect!r}')
    actions = _strings(raw.get("Action"), f"{where}: Action")
    for action in actions:
        if not action.lower().startswith(SERVICE_PREFIX):
            raise PolicyError(f"{where}: action {action!r} does not start with {SERVICE_PREFIX!r}")
        if known and not any(_pattern(action, True).fullmatch(name) for name in known):
            raise PolicyError(f"{where}: action {action!r} matches no Rekognition operation")
    resources = _strings(raw.get("Resource"), f"{where}: Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(f'{where}: resource {resource!r} is neither "*" nor an ARN')
    return Statement(Effect(effect), actions, resources)


def _strings(value: object, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{what} must be a non-empty string or list of strings")
    return tuple(values)


def evaluate(policy: Policy, action: str, resource: str) -> Decision:
    """IAM's decision for `action` (e.g. "rekognition:SearchFacesByImage") on `resource` (an ARN or "*")."""
    matching = [s.effect for s in policy.statements if s.matches(action, resource)]
    if Effect.DENY in matching:
        return Decision.EXPLICIT_DENY
    if Effect.ALLOW in matching:
        return Decision.ALLOWED
    return Decision.IMPLICIT_DENY


@dataclass(frozen=True)
class Resource:
    """What a call acts on: `arn` is matched against policies, `shown` goes into a refusal message."""

    arn: str
    shown: str


def resource_of(
    operation: str,
    params: Mapping[str, Any],
    collection_arn: Callable[[str], str],
    job_collection: Callable[[str], str | None],
) -> Resource:
    """The resource `operation` with `params` acts on.

    A CollectionId names a collection; a ResourceArn (the tagging calls) is its own resource;
    GetFaceSearch acts on the collection its job searches (`job_collection`, None for an unknown
    job), which the refusal does not name, as the caller did not; anything else has no resource.
    """
    if isinstance(params.get("CollectionId"), str):
        arn = collection_arn(params["CollectionId"])
        return Resource(arn, arn)
    if isinstance(params.get("ResourceArn"), str):
        return Resource(params["ResourceArn"], params["ResourceArn"])
    if operation == "GetFaceSearch" and isinstance(params.get("JobId"), str):
        collection = job_collection(params["JobId"])
        if collection is not None:
            return Resource(collection_arn(collection), f"the collection of job {params['JobId']}")
    return Resource(NO_RESOURCE, NO_RESOURCE)


def authorize(principal: str, policy: Policy, operation: str, resource: Resource) -> None:
    """Nothing if `policy` allows `operation` on `resource`; else AccessDeniedException, naming
    only the caller's own key, the operation and the resource of the request."""
    action = f"{SERVICE_PREFIX}{operation}"
    if evaluate(policy, action, resource.arn) is not Decision.ALLOWED:
        raise AccessDeniedException(
            f"User: {principal} is not authorized to perform: {action} on resource: {resource.shown}"
        )


def check_request(ctx: Context, principal: str, policy: Policy, operation: str, params: Mapping[str, Any]) -> None:
    """`authorize` for a parsed request, its resource named with the settings' region and account."""
    authorize(principal, policy, operation, resource_of(operation, params, ctx.collection_arn, _job_collection(ctx)))


def _job_collection(ctx: Context) -> Callable[[str], str | None]:
    def collection(job_id: str) -> str | None:
        try:
            job = ctx.jobs.get_job(job_id)
        except ResourceNotFoundException:
            return None
        found = job.params.get("CollectionId") if job.operation == "StartFaceSearch" else None
        return found if isinstance(found, str) else None

    return collection


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _short(resource: str) -> str:
    """`collection/<id>` for a collection ARN (region and account are the same everywhere here)."""
    match = re.fullmatch(r"arn:aws:rekognition:[^:]*:[^:]*:(collection/.*)", resource)
    return match[1] if match else resource
