"""AWS Signature Version 4 verification, using botocore's own signer to rebuild the signature."""

from __future__ import annotations

import configparser
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opsis.api.policy import ADMINISTRATOR, Policy, stored_policy
from opsis.config import Settings
from opsis.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from opsis.store import open_key_store
from opsis.store.keys import KeyStore, new_key_pair

log = logging.getLogger(__name__)

SERVICE = "rekognition"
PROFILE = "opsis"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*"
)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Principal:
    """Who signed a request."""

    access_key_id: str
    region: str
    policy: Policy = field(default=Policy(()))  # what the key may do; no statements: nothing


@dataclass(frozen=True)
class SignedRequest:
    """What verification needs from an HTTP request: headers as (lower-case name, value) pairs."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


class KeyRing:
    """The keys this server accepts: configured ones (`keys`, full access) and, looked up on each
    request so that creating and revoking take effect at once, the active keys of `store`."""

    def __init__(self, keys: dict[str, str], store: KeyStore | None = None) -> None:
        self._keys = dict(keys)
        self._store = store

    def __len__(self) -> int:
        return len(self._keys) + (self._store.count_active() if self._store else 0)

    def lookup(self, access_key_id: str) -> tuple[str, Policy] | None:
        """The secret and policy of an accepted key; None for an unknown or revoked one."""
        if access_key_id in self._keys:
            return self._keys[access_key_id], ADMINISTRATOR
        key = self._store.active(access_key_id) if self._store else None
        return (key.secret, stored_policy(key.policy_document)) if key else None

    def secret_for(self, access_key_id: str) -> str | None:
        found = self.lookup(access_key_id)
        return found[0] if found else None

    def verify(self, request: SignedRequest, now: datetime, max_skew: timedelta) -> Principal:
        """The principal that signed `request`, or the error AWS would answer with."""
        headers = _header_map(request.headers)
        authorization = headers.get("authorization")
        if not authorization:
            raise MissingAuthenticationTokenException("Missing Authentication Token")
        match = AUTHORIZATION.fullmatch(authorization.strip())
        if not match:
            raise IncompleteSignatureException(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters of the AWS4-HMAC-SHA256 scheme"
            )
        access_key_id, date, region, service, terminator = _credential_scope(match["credential"])
        found = self.lookup(access_key_id)
        if found is None:
            raise UnrecognizedClientException("The security token included in the request is invalid.")
        secret, policy = found
        signed = match["signed"].split(";")
        amz_date = _request_time(headers, signed, now, max_skew)
        if date != amz_date[:8] or service != SERVICE or terminator != "aws4_request":
            raise InvalidSignatureException(
                f"Credential should be scoped to a valid date, region and service '{SERVICE}': "
                f"{date}/{region}/{service}/{terminator}"
            )
        expected = _signature(request, signed, amz_date, Credentials(access_key_id, secret), region)
        if not hmac.compare_digest(expected, match["signature"]):
            raise InvalidSignatureException(MISMATCH)
        return Principal(access_key_id=access_key_id, region=region, policy=policy)


def _header_map(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _credential_scope(credential: str) -> tuple[str, str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have the form <key>/<yyyymmdd>/<region>/<service>/aws4_request"
        )
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _request_time(headers: dict[str, str], signed: list[str], now: datetime, max_skew: timedelta) -> str:
    """The signed X-Amz-Date, checked against the server clock."""
    if "host" not in signed or "x-amz-date" not in signed or "x-amz-date" not in headers:
        raise IncompleteSignatureException("The host and x-amz-date headers must be signed")
    amz_date = headers["x-amz-date"]
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureException(f"X-Amz-Date {amz_date!r} is not of the form yyyyMMddTHHmmssZ") from None
    if abs(now - signed_at) > max_skew:
        minutes = int(max_skew.total_seconds() // 60)
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - max_skew).strftime(AMZ_DATE_FORMAT)} ({now.strftime(AMZ_DATE_FORMAT)} - {minutes} min.)"
            if signed_at < now
            else f"Signature not yet current: {amz_date} is still later than "
            f"{(now + max_skew).strftime(AMZ_DATE_FORMAT)} ({now.strftime(AMZ_DATE_FORMAT)} + {minutes} min.)"
        )
    return amz_date


def _signature(request: SignedRequest, signed: list[str], amz_date: str, credentials: Credentials, region: str) -> str:
    """The signature botocore would compute for the signed parts of this request."""
    body_hash = hashlib.sha256(request.body).hexdigest()
    aws_request = AWSRequest(method=request.method, url=f"http://placeholder{request.path}", data=request.body)
    if request.query:
        aws_request.url += f"?{request.query}"
    for name, value in request.headers:
        if name in signed:
            aws_request.headers[name] = value  # HTTPHeaders appends, so repeated headers stay repeated
    claimed = aws_request.headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != body_hash:
        # A payload hash that is not the body's would let a signed header vouch for any body.
        raise InvalidSignatureException("The x-amz-content-sha256 header does not match the request body")
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(credentials, SERVICE, region)
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def load_key_ring(settings: Settings) -> KeyRing:
    """The configured key, plus every profile in <data_dir>/credentials (both with full access), plus
    the keys of `opsis keys create`; creates the credentials file with a new key pair when no key is
    configured anywhere."""
    store = open_key_store(settings)
    keys = _read_credentials(settings.credentials_file)
    if settings.access_key_id and settings.secret_access_key:
        keys[settings.access_key_id] = settings.secret_access_key
    if not keys and not store.count_active():
        access_key_id, secret = create_credentials(settings.credentials_file)
        log.warning(
            "No access keys were configured: created one in %s (profile %r). Use it with "
            "AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=%s",
            settings.credentials_file.resolve(),
            PROFILE,
            settings.credentials_file.resolve(),
            PROFILE,
        )
        keys[access_key_id] = secret
    return KeyRing(keys, store)


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    parser = configparser.ConfigParser()
    parser.read(path)
    return {
        section["aws_access_key_id"]: section["aws_secret_access_key"]
        for section in parser.values()
        if "aws_access_key_id" in section and "aws_secret_access_key" in section
    }


def create_credentials(path: Path) -> tuple[str, str]:
    """Write a new key pair as profile `opsis` of an AWS shared-credentials file (mode 0600)."""
    access_key_id, secret = new_key_pair()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"[{PROFILE}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return access_key_id, secret
