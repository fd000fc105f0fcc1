"""The IAM-style policy evaluator, in-process: parsing, IAM's decision rules, resources of calls."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest

from opsis.api.policy import (
    ADMINISTRATOR,
    NO_RESOURCE,
    Decision,
    PolicyError,
    authorize,
    evaluate,
    parse_policy,
    resource_of,
)
from opsis.errors import AccessDeniedException
from opsis.service_model import service_model

ARN = "arn:aws:rekognition:us-east-1:000000000000:collection/"
KNOWN = [f"rekognition:{name}" for name in service_model().operation_names]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


SEARCH_A = policy({"Effect": "Allow", "Action": "rekognition:SearchFacesByImage", "Resource": f"{ARN}a"})
ALL_BUT_DELETE_A = policy(
    {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
    {"Effect": "Deny", "Action": ["rekognition:Delete*"], "Resource": f"{ARN}a"},
)
DETECT_ANYWHERE = policy({"Effect": "Allow", "Action": ["rekognition:detect*"], "Resource": "*"})
STAFF_COLLECTIONS = policy({"Effect": "Allow", "Action": "rekognition:Search*", "Resource": f"{ARN}staff-??"})
ALLOW_ON_COLLECTIONS_ONLY = policy({"Effect": "Allow", "Action": "rekognition:*", "Resource": f"{ARN}*"})


@pytest.mark.parametrize(
    ("document", "action", "resource", "expected"),
    [
        (SEARCH_A, "rekognition:SearchFacesByImage", f"{ARN}a", Decision.ALLOWED),
        (SEARCH_A, "rekognition:SearchFacesByImage", f"{ARN}b", Decision.IMPLICIT_DENY),
        (SEARCH_A, "rekognition:SearchFacesByImage", f"{ARN}ab", Decision.IMPLICIT_DENY),
        (SEARCH_A, "rekognition:SearchFaces", f"{ARN}a", Decision.IMPLICIT_DENY),
        (SEARCH_A, "rekognition:IndexFaces", f"{ARN}a", Decision.IMPLICIT_DENY),
        (SEARCH_A, "rekognition:DetectFaces", NO_RESOURCE, Decision.IMPLICIT_DENY),
        (ALL_BUT_DELETE_A, "rekognition:DeleteFaces", f"{ARN}a", Decision.EXPLICIT_DENY),
        (ALL_BUT_DELETE_A, "rekognition:DeleteCollection", f"{ARN}a", Decision.EXPLICIT_DENY),
        (ALL_BUT_DELETE_A, "rekognition:DeleteCollection", f"{ARN}b", Decision.ALLOWED),
        (ALL_BUT_DELETE_A, "rekognition:IndexFaces", f"{ARN}a", Decision.ALLOWED),
        (ALL_BUT_DELETE_A, "rekognition:ListCollections", NO_RESOURCE, Decision.ALLOWED),
        (DETECT_ANYWHERE, "rekognition:DetectFaces", NO_RESOURCE, Decision.ALLOWED),  # actions ignore case
        (DETECT_ANYWHERE, "rekognition:DetectLabels", NO_RESOURCE, Decision.ALLOWED),
        (DETECT_ANYWHERE, "rekognition:CompareFaces", NO_RESOURCE, Decision.IMPLICIT_DENY),
        (STAFF_COLLECTIONS, "rekognition:SearchFaces", f"{ARN}staff-01", Decision.ALLOWED),
        (STAFF_COLLECTIONS, "rekognition:SearchUsers", f"{ARN}staff-1", Decision.IMPLICIT_DENY),
        (STAFF_COLLECTIONS, "rekognition:SearchUsers", f"{ARN}STAFF-01", Decision.IMPLICIT_DENY),  # ARNs keep case
        (ALLOW_ON_COLLECTIONS_ONLY, "rekognition:IndexFaces", f"{ARN}x", Decision.ALLOWED),
        # A call on no resource needs a statement whose Resource covers "*", as in IAM.
        (ALLOW_ON_COLLECTIONS_ONLY, "rekognition:ListCollections", NO_RESOURCE, Decision.IMPLICIT_DENY),
    ],
)
def test_evaluate_follows_iam(document: str, action: str, resource: str, expected: Decision) -> None:
    assert evaluate(parse_policy(document, KNOWN), action, resource) is expected


def test_no_statement_is_refused_and_administrator_allows_everything() -> None:
    with pytest.raises(PolicyError, match="Statement"):
        parse_policy(policy())
    for action in KNOWN:
        assert evaluate(ADMINISTRATOR, action, f"{ARN}any") is Decision.ALLOWED
        assert evaluate(ADMINISTRATOR, action, NO_RESOURCE) is Decision.ALLOWED


def statement(**elements: Any) -> str:
    return policy({"Effect": "Allow", "Action": "rekognition:*", "Resource": "*", **elements})


def refused(match: str) -> AbstractContextManager[object]:
    return pytest.raises(PolicyError, match=match)


@pytest.mark.parametrize(
    ("text", "expectation"),
    [
        (SEARCH_A, nullcontext()),
        ('{"Statement": {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}}', nullcontext()),
        ("{not json", refused("not valid JSON")),
        ("[]", refused("JSON object")),
        (statement(Effect="Permit"), refused("Effect")),
        (statement(Action="s3:GetObject"), refused("does not start with 'rekognition:'")),
        (statement(Action="rekognition:SearchFaceByImage"), refused("matches no Rekognition operation")),
        (statement(Action=[]), refused("Action must be")),
        (statement(Resource=None), refused("Resource must be")),
        (statement(Resource="collection/a"), refused('neither "\\*" nor an ARN')),
        (statement(NotAction="rekognition:*"), refused("NotAction")),
        (statement(Condition={}), refused("Condition")),
        ('{"Version": "2020-01-01", "Statement": []}', refused("Version")),
    ],
)
def test_parse_policy_explains_what_is_wrong(text: str, expectation: AbstractContextManager[object]) -> None:
    with expectation:
        parse_policy(text, KNOWN)


def test_policy_round_trips_through_its_document() -> None:
    parsed = parse_policy(ALL_BUT_DELETE_A, KNOWN)
    assert parse_policy(parsed.to_json(), KNOWN) == parsed
    assert parsed.summary() == "Allow rekognition:* on *\nDeny rekognition:Delete* on collection/a"


def collection_arn(collection_id: str) -> str:
    return f"{ARN}{collection_id}"


def test_resource_of_names_the_collection_the_tagged_arn_or_nothing() -> None:
    def no_job(job_id: str) -> str | None:
        raise AssertionError("only GetFaceSearch looks its job up")

    search = resource_of("SearchFacesByImage", {"CollectionId": "a"}, collection_arn, no_job)
    assert (search.arn, search.shown) == (f"{ARN}a", f"{ARN}a")
    assert resource_of("DetectFaces", {"Image": {}}, collection_arn, no_job).arn == NO_RESOURCE
    assert resource_of("ListCollections", {}, collection_arn, no_job).arn == NO_RESOURCE
    assert resource_of("TagResource", {"ResourceArn": f"{ARN}t"}, collection_arn, no_job).arn == f"{ARN}t"
    assert resource_of("GetLabelDetection", {"JobId": "j"}, collection_arn, no_job).arn == NO_RESOURCE


def test_get_face_search_acts_on_its_jobs_collection_without_naming_it() -> None:
    jobs = {"j1": "secret-collection"}
    found = resource_of("GetFaceSearch", {"JobId": "j1"}, collection_arn, jobs.get)
    assert found.arn == f"{ARN}secret-collection"
    assert "secret-collection" not in found.shown
    assert resource_of("GetFaceSearch", {"JobId": "nope"}, collection_arn, jobs.get).arn == NO_RESOURCE
    with pytest.raises(AccessDeniedException) as refused:
        authorize("OPSISKEY", parse_policy(SEARCH_A), "GetFaceSearch", found)
    assert "secret-collection" not in refused.value.message


def test_authorize_names_only_the_caller_the_action_and_the_requested_resource() -> None:
    resource = resource_of("SearchFacesByImage", {"CollectionId": "b"}, collection_arn, lambda _: None)
    authorize("OPSISKEY", parse_policy(ALL_BUT_DELETE_A), "SearchFacesByImage", resource)
    with pytest.raises(AccessDeniedException) as refused:
        authorize("OPSISKEY", parse_policy(SEARCH_A), "SearchFacesByImage", resource)
    assert refused.value.message == (
        f"User: OPSISKEY is not authorized to perform: rekognition:SearchFacesByImage on resource: {ARN}b"
    )
    assert refused.value.code == "AccessDeniedException"
    assert refused.value.status == 400
