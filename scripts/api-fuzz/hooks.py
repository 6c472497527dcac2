"""Schemathesis hooks for scripts/api-fuzz.sh: real Tessera credentials, real values, statistics.

Loaded with SCHEMATHESIS_HOOKS=<this file>. Reads (set by the script):

  API_FUZZ_BASE_URL      the running service, such as http://127.0.0.1:41234
  API_FUZZ_SERVICE_KEY   the service API key (DIR/service-api-key)
  API_FUZZ_USER          the user whose sessions the non-destructive operations use (alice)
  API_FUZZ_DESTROYER     a second user, for the operations that end sessions
  API_FUZZ_PASSWORD      both users' password
  API_FUZZ_UPSTREAM      the name of the fake upstream pool, or empty
  API_FUZZ_STATS         where to write the statistics (JSON) when schemathesis exits

Credentials, per security scheme of the operation:

- `serviceKey`: the service key.
- `sessionToken` / `sessionCookie` (the session operations): one of three kinds, chosen from a
  hash of the generated case (so a seed reproduces the choice): the session cookie with its CSRF
  token (cookie-mode login), an access token (token-mode login), or a session token
  (`POST /v1/sessions`). The non-destructive operations share long-lived credentials of
  API_FUZZ_USER (and the subject `api-fuzz-reader`); one that dies (a 401 AUTH_1002, AUTH_1003 or
  AUTH_1010 on a request that carried it) is replaced, and counted. The operations that end
  sessions (`logOut`, `revokeSessions`, `revokeSession`) get a new session of
  API_FUZZ_DESTROYER (or the subject `api-fuzz-destroyer`) for every case, so they can never
  end a credential another operation uses.

Real values put into some of the generated cases (chosen from the same hash, the rest left as
generated), so that the operations are exercised past their first refusal: the real username
and password for `logIn`; a fresh refresh token for `refreshTokens`; real tokens for
`introspectToken`; the current data version as `If-Match` for `updateSessionData`; the
caller's own session ids for `revokeSession`; a foreign `Origin` on some `logIn` and
cookie-authenticated unsafe requests; and an `X-Forwarded-For` of 192.0.2.x on `logIn`.
Schemathesis revalidates a case that a `before_call` hook changed, so the checks judge what was
sent. (Path parameters are not changed here: schemathesis 4.32.5 revalidates them
percent-encoded, so a negative path would pass for a positive one; the upstream's name is set in
schemathesis.toml instead, and `filter_failure` below drops the ST202 that the same flaw causes
when a stateful link sets a path parameter, and ST301 on the proxy.)
"""

import atexit
import collections
import hashlib
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass

import requests
import schemathesis

BASE = os.environ["API_FUZZ_BASE_URL"].rstrip("/")
SERVICE_KEY = os.environ["API_FUZZ_SERVICE_KEY"]
USER = os.environ["API_FUZZ_USER"]
DESTROYER = os.environ["API_FUZZ_DESTROYER"]
PASSWORD = os.environ["API_FUZZ_PASSWORD"]
UPSTREAM = os.environ.get("API_FUZZ_UPSTREAM", "")
STATS_PATH = os.environ["API_FUZZ_STATS"]

COOKIE = "tessera_session"
FOREIGN_ORIGIN = "http://attacker.example"
DESTRUCTIVE = {"logOut", "revokeSessions", "revokeSession"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
KINDS = ("cookie", "access-token", "session-token")
TIMEOUT = 10


@dataclass(frozen=True)
class Credential:
    kind: str  # cookie, access-token, session-token, service-key
    token: str
    csrf: str | None = None
    session_id: str | None = None
    subject: str | None = None
    # A stand-in put on a case of an operation that ends sessions when it is generated, replaced
    # by a new session when the case is sent (schemathesis generates some phases' cases ahead
    # of sending them, and one `DELETE /v1/sessions?scope=all` would end the rest).
    placeholder: bool = False


_lock = threading.Lock()
_readers: dict[str, Credential] = {}
# Every credential this file made, by token: tells a real credential from a generated one.
_known: dict[str, Credential] = {}


def _remember(credential: Credential) -> Credential:
    with _lock:
        _known[credential.token] = credential
    return credential


def _post(path: str, body: dict, headers: dict | None = None) -> requests.Response:
    response = requests.post(BASE + path, json=body, headers=headers or {}, timeout=TIMEOUT)
    if response.status_code >= 300:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
    return response


def login(user: str, mode: str) -> Credential:
    response = _post("/v1/login", {"username": user, "password": PASSWORD, "mode": mode, "label": "api-fuzz"})
    body = response.json()
    if mode == "token":
        return _remember(Credential("access-token", body["accessToken"], None, body["session"]["id"], user))
    token = response.cookies.get(COOKIE)
    if not token:
        raise RuntimeError("a cookie-mode login set no session cookie")
    return _remember(Credential("cookie", token, body["csrfToken"], body["session"]["id"], user))


def service_session(subject: str, mode: str = "cookie") -> tuple[Credential, dict]:
    response = _post(
        "/v1/sessions",
        {"subject": subject, "mode": mode, "label": "api-fuzz"},
        {"Authorization": f"Bearer {SERVICE_KEY}"},
    )
    body = response.json()
    if mode == "token":
        credential = Credential("access-token", body["accessToken"], None, body["session"]["id"], subject)
    else:
        credential = Credential("session-token", body["token"], body["csrfToken"], body["session"]["id"], subject)
    return _remember(credential), body


def make_credential(kind: str, user: str, subject: str) -> Credential:
    if kind == "cookie":
        return login(user, "cookie")
    if kind == "access-token":
        return login(user, "token")
    return service_session(subject)[0]


def reader(kind: str) -> Credential:
    with _lock:
        credential = _readers.get(kind)
    if credential is None:
        credential = make_credential(kind, USER, "api-fuzz-reader")
        with _lock:
            _readers.setdefault(kind, credential)
            credential = _readers[kind]
    return credential


def case_hash(case, salt: str = "") -> int:
    """A number fixed by the case's generated content, for choices a seed reproduces."""
    text = repr(
        (
            salt,
            case.operation.label,
            case.path_parameters,
            sorted((case.query or {}).items()),
            sorted((k, v) for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-csrf-token")),
            case.body if not isinstance(case.body, (bytes, bytearray)) else bytes(case.body),
        )
    )
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def operation_id(operation) -> str:
    return (operation.definition.raw or {}).get("operationId") or operation.label


def schemes_of(operation) -> set[str]:
    names: set[str] = set()
    for requirement in (operation.definition.raw or {}).get("security") or []:
        names.update(requirement)
    return names


# MARK: Credentials per security scheme


_placeholders = iter(range(1, 1 << 62))


@schemathesis.auth(refresh_interval=None)
class TesseraAuth:
    def get(self, case, context):
        operation = context.operation
        schemes = schemes_of(operation)
        if "serviceKey" in schemes:
            return _remember(Credential("service-key", SERVICE_KEY))
        if "sessionToken" in schemes or "sessionCookie" in schemes:
            kind = KINDS[case_hash(case, "kind") % len(KINDS)]
            if operation_id(operation) in DESTRUCTIVE:
                with _lock:
                    number = next(_placeholders)
                return _remember(Credential(kind, f"placeholder-{number}", "placeholder", placeholder=True))
            return reader(kind)
        return None

    def set(self, case, credential, context):
        apply_credential(case, credential)


def apply_credential(case, credential: Credential) -> None:
    if case.headers is None:
        case.headers = {}
    if credential.kind == "cookie":
        case.headers.pop("Authorization", None)
        case.cookies = {**(case.cookies or {}), COOKIE: credential.token}
        if case.method.upper() in UNSAFE:
            case.headers["X-CSRF-Token"] = credential.csrf
    else:
        if case.cookies:
            case.cookies.pop(COOKIE, None)
            case.cookies.pop("__Host-" + COOKIE, None)
        case.headers["Authorization"] = f"Bearer {credential.token}"


def credential_of(headers) -> Credential | None:
    """The credential this file made that a request carries, if any."""
    authorization = headers.get("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        return _known.get(authorization[7:].strip())
    for part in (headers.get("Cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return _known.get(value)
    return None


# MARK: Real values in some cases


def _is_text(value, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


@schemathesis.hook
def before_call(context, case, kwargs):
    op = operation_id(case.operation)
    choice = case_hash(case, "value")
    headers = case.headers if case.headers is not None else {}
    credential = credential_of(headers)
    if credential is None and case.cookies and COOKIE in case.cookies:
        credential = _known.get(case.cookies[COOKIE])
    if credential is not None and credential.placeholder:
        credential = make_credential(credential.kind, DESTROYER, "api-fuzz-destroyer")
        apply_credential(case, credential)
        headers = case.headers

    if op == "logIn" and isinstance(case.body, dict):
        body = case.body
        # Only values that are valid already are replaced, so a negative case stays negative.
        if choice % 2 == 0 and _is_text(body.get("username"), 1, 256) and _is_text(body.get("password"), 1, 1024):
            body["username"] = USER
            body["password"] = PASSWORD
        if choice % 8 == 7:
            headers["Origin"] = FOREIGN_ORIGIN
        # The service trusts X-Forwarded-For here (the script starts it so): the fuzzer's wrong
        # passwords count against documentation addresses, never against 127.0.0.1, whose
        # 50 failures per window (a limit `tessera serve` has no setting for) would throttle
        # the logins this file makes for credentials.
        headers["X-Forwarded-For"] = f"192.0.2.{1 + choice % 254}"
    elif op == "refreshTokens" and isinstance(case.body, dict) and isinstance(case.body.get("refreshToken"), str):
        if choice % 2 == 0:
            _, body = service_session("api-fuzz-refresh", mode="token")
            case.body["refreshToken"] = body["refreshToken"]
    elif op == "introspectToken" and isinstance(case.body, dict) and isinstance(case.body.get("token"), str):
        pick = choice % 4
        if pick == 0:
            case.body["token"] = reader("session-token").token
        elif pick == 1:
            case.body["token"] = reader("access-token").token
        elif pick == 2:
            _, body = service_session("api-fuzz-introspect", mode="token")
            case.body["token"] = body["refreshToken"]
    elif op == "updateSessionData" and credential is not None and choice % 2 == 0:
        if "If-Match" in headers:
            auth = {"Authorization": f"Bearer {credential.token}"} if credential.kind != "cookie" else {}
            cookies = {COOKIE: credential.token} if credential.kind == "cookie" else {}
            answer = requests.get(BASE + "/v1/session", headers=auth, cookies=cookies, timeout=TIMEOUT)
            if answer.status_code == 200 and answer.headers.get("ETag"):
                headers["If-Match"] = answer.headers["ETag"]
    elif op == "revokeSession" and credential is not None and case.path_parameters:
        pick = choice % 3
        if pick == 0:
            case.path_parameters["id"] = credential.session_id
        elif pick == 1:
            sibling = make_credential(credential.kind, DESTROYER, "api-fuzz-destroyer")
            if sibling.subject == credential.subject:
                case.path_parameters["id"] = sibling.session_id

    # A foreign Origin on some cookie-authenticated unsafe requests: 403 AUTH_1011.
    if credential is not None and credential.kind == "cookie" and case.method.upper() in UNSAFE and choice % 8 == 6:
        headers["Origin"] = FOREIGN_ORIGIN
    if headers and case.headers is None:
        case.headers = headers


# MARK: A schemathesis false positive


def _violated_path_pattern(case) -> str | None:
    """The path parameter whose value, percent-decoded, breaks its schema's `pattern`, if any."""
    for parameter in (case.operation.definition.raw or {}).get("parameters") or []:
        pattern = (parameter.get("schema") or {}).get("pattern") if isinstance(parameter, dict) else None
        if parameter.get("in") != "path" or not pattern:
            continue
        value = (case.path_parameters or {}).get(parameter["name"])
        if isinstance(value, str) and not re.search(pattern, urllib.parse.unquote(value)):
            return parameter["name"]
    return None


PROXY = "/v1/upstreams/{name}/proxy/{path}"


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops two kinds of failure that say nothing about Tessera:

    - ST202 ("schema-valid request rejected") for a request whose path parameter is not
      schema-valid. Schemathesis 4.32.5 revalidates a case whose path parameters changed (a
      stateful link setting `name`, say) against their percent-encoded form, so `%1F` passes a
      pattern that forbids U+001F and a negative case is judged as a positive one.
    - ST301 ("deleted resource still available") on the proxy: what a DELETE forwarded to the
      upstream site does is the site's business (the fake one deletes nothing), and Tessera
      passes the site's answers on as they come.
    """
    code = getattr(failure, "code", None)
    if code == "ST202":
        name = _violated_path_pattern(case)
        if name is not None:
            with _stats_lock:
                _stats["dropped_failures"][f"ST202 {case.operation.label} (negative `{name}`)"] += 1
            return False
    if code == "ST301" and case.operation.path == PROXY:
        with _stats_lock:
            _stats["dropped_failures"][f"ST301 {case.operation.label} (the upstream's semantics)"] += 1
        return False
    return True


# MARK: Statistics, and replacing dead credentials

_stats_lock = threading.Lock()
_stats = {
    "requests": 0,
    "by_status": collections.Counter(),
    "by_operation": collections.defaultdict(lambda: collections.Counter()),
    "secured_requests": 0,
    "secured_with_real_credential": 0,
    "secured_real_accepted": 0,
    "secured_real_401": collections.Counter(),
    "by_kind": collections.defaultdict(lambda: collections.Counter()),
    "readers_replaced": collections.Counter(),
    "placeholders_sent": 0,
    "dropped_failures": collections.Counter(),
}


def _error_code(response) -> str | None:
    try:
        return json.loads(response.content)["error"]["code"]
    except Exception:
        return None


@schemathesis.hook
def after_call(context, case, response):
    operation = case.operation
    op_id = operation_id(operation)
    secured = bool(schemes_of(operation))
    credential = credential_of(response.request.headers)
    status = response.status_code
    with _stats_lock:
        _stats["requests"] += 1
        _stats["by_status"][str(status)] += 1
        _stats["by_operation"][operation.label][str(status)] += 1
        if secured:
            _stats["secured_requests"] += 1
            if credential is not None and credential.placeholder:
                _stats["placeholders_sent"] += 1
            elif credential is not None:
                _stats["secured_with_real_credential"] += 1
                _stats["by_kind"][credential.kind]["sent"] += 1
                if status == 401:
                    code = _error_code(response) or "?"
                    _stats["secured_real_401"][f"{operation.label} {code}"] += 1
                    _stats["by_kind"][credential.kind]["401"] += 1
                else:
                    _stats["secured_real_accepted"] += 1
    if op_id == "lendUpstreamSession" and status == 200:
        # Give the lease back at once, or a few lends exhaust the pool (503 UPSTREAM_EXHAUSTED).
        try:
            lease = json.loads(response.content)["lease"]
            requests.delete(
                f"{BASE}/v1/upstreams/{UPSTREAM}/session/{lease}",
                headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                timeout=TIMEOUT,
            )
        except Exception:
            pass
    if status == 401 and credential is not None and credential.kind in KINDS:
        if _error_code(response) in ("AUTH_1002", "AUTH_1003", "AUTH_1010"):
            with _lock:
                for kind, current in list(_readers.items()):
                    if current.token == credential.token:
                        del _readers[kind]
                        with _stats_lock:
                            _stats["readers_replaced"][kind] += 1


@atexit.register
def _write_stats():
    with _stats_lock:
        data = json.loads(json.dumps(_stats, default=dict))
    try:
        with open(STATS_PATH, "w") as file:
            json.dump(data, file, indent=1, sort_keys=True)
    except OSError:
        pass
