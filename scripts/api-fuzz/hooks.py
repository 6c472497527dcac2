"""Schemathesis hooks for scripts/api-fuzz.sh: real Tessera credentials, real values, statistics.

Loaded with SCHEMATHESIS_HOOKS=<this file>. Reads (set by the script):

  API_FUZZ_BASE_URL      the running service, such as http://127.0.0.1:41234
  API_FUZZ_SERVICE_KEY   the service API key (DIR/service-api-key)
  API_FUZZ_ADMIN_KEY     the admin API key (TESSERA_ADMIN_API_KEY of the service)
  API_FUZZ_OPERATOR      a user whose role is `admin`, for the admin API's sessions
  API_FUZZ_USER          the user whose sessions the non-destructive operations use (alice)
  API_FUZZ_DESTROYER     a second user, for the operations that end sessions
  API_FUZZ_PASSWORD      the password of these users (and of the ones made here)
  API_FUZZ_UPSTREAM      the name of the fake upstream pool, or empty
  API_FUZZ_STATS         where to write the statistics (JSON) when schemathesis exits
  API_FUZZ_SPEC          the OpenAPI document schemathesis runs on (for filter_failure)

Credentials, per security scheme of the operation:

- `serviceKey`: the service key.
- `adminKey` (the admin API, which also takes an operator's session): the admin key for half of
  the cases; a session of API_FUZZ_OPERATOR (one of the three kinds below, the session token
  one made for the operator's user id; long-lived, as the readers are) for three in eight; a
  reader of API_FUZZ_USER, who is no operator (`403 AUTH_1005`), for one in eight.
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
cookie-authenticated unsafe requests; an `X-Forwarded-For` of 192.0.2.x on `logIn`; real user
ids, usernames and session ids for the admin operations, and a cursor of the service's form
for every schema-valid `cursor` (a schema cannot say which strings the service gave).
Schemathesis revalidates a case that a `before_call` hook changed, so the checks judge what was
sent. (Path parameters are changed here only where their schema is a plain string, which no
value violates: schemathesis 4.32.5 revalidates them percent-encoded, so a negative path would
pass for a positive one; the upstream's name is set in schemathesis.toml instead, and
`filter_failure` below drops the ST202 that the same flaw causes when a stateful link sets a
path parameter, and ST301 on the proxy.)

The admin operations that change a user (`adminUpdateUser`, `adminSetUserPassword`,
`adminRevokeUserSessions`) never reach a user this file relies on: a case aimed at
API_FUZZ_USER, API_FUZZ_DESTROYER or API_FUZZ_OPERATOR (a stateful link can carry their ids
from a listing) is aimed at a throwaway user (`api-fuzz-victim-N`, made here) instead; and
`adminRevokeSession` aimed at the session of a credential made here is aimed at a throwaway
session. Disabling alice, or giving her another password, would end every credential of the
run (and API_FUZZ_MIN_AUTH with them).
"""

import atexit
import base64
import collections
import dataclasses
import hashlib
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass

import jsonschema_rs
import requests
import schemathesis
import yaml

BASE = os.environ["API_FUZZ_BASE_URL"].rstrip("/")
SERVICE_KEY = os.environ["API_FUZZ_SERVICE_KEY"]
ADMIN_KEY = os.environ["API_FUZZ_ADMIN_KEY"]
OPERATOR = os.environ["API_FUZZ_OPERATOR"]
USER = os.environ["API_FUZZ_USER"]
DESTROYER = os.environ["API_FUZZ_DESTROYER"]
PASSWORD = os.environ["API_FUZZ_PASSWORD"]
UPSTREAM = os.environ.get("API_FUZZ_UPSTREAM", "")
STATS_PATH = os.environ["API_FUZZ_STATS"]
SPEC_PATH = os.environ.get(
    "API_FUZZ_SPEC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Sources/TesseraHummingbird/openapi.yaml")
)

COOKIE = "tessera_session"
FOREIGN_ORIGIN = "http://attacker.example"
DESTRUCTIVE = {"logOut", "revokeSessions", "revokeSession"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
KINDS = ("cookie", "access-token", "session-token")
TIMEOUT = 10
# The admin operations that change a user, and how many throwaway users they are pointed at.
USER_CHANGING = {"adminUpdateUser", "adminSetUserPassword", "adminRevokeUserSessions"}
VICTIMS = 8
# The `cursor` patterns of the admin listings (as in the document).
SESSION_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
USER_CURSOR = re.compile(r"([A-Za-z0-9_-]{2,1366})?")
# AdminCreateUserRequest's `username` (as in the document).
USERNAME = re.compile(r"[^\x00-\x20\x7F\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]{1,256}")


@dataclass(frozen=True)
class Credential:
    kind: str  # cookie, access-token, session-token, service-key, admin-key
    token: str
    csrf: str | None = None
    session_id: str | None = None
    subject: str | None = None
    # A stand-in put on a case of an operation that ends sessions when it is generated, replaced
    # by a new session when the case is sent (schemathesis generates some phases' cases ahead
    # of sending them, and one `DELETE /v1/sessions?scope=all` would end the rest).
    placeholder: bool = False
    # Whether the subject is API_FUZZ_OPERATOR (an operator of the admin API).
    operator: bool = False

    @property
    def label(self) -> str:
        return f"{self.kind} (operator)" if self.operator else self.kind


_lock = threading.Lock()
_readers: dict[str, Credential] = {}
_operators: dict[str, Credential] = {}
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


def _admin(method: str, path: str, body: dict | None = None) -> requests.Response:
    response = requests.request(
        method, BASE + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=TIMEOUT
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
    return response


_user_ids: dict[str, str] = {}


def user_id(username: str) -> str:
    """The id of an existing user (looked up once, with the admin key)."""
    with _lock:
        known = _user_ids.get(username)
    if known is None:
        users = _admin("GET", "/v1/admin/users?" + urllib.parse.urlencode({"prefix": username, "limit": 500})).json()["users"]
        known = next(user["id"] for user in users if user["username"] == username)
        with _lock:
            _user_ids[username] = known
    return known


def operator(kind: str) -> Credential:
    """A long-lived session of API_FUZZ_OPERATOR: a login, or a session for the operator's user id."""
    with _lock:
        credential = _operators.get(kind)
    if credential is None:
        if kind == "session-token":
            made = service_session(user_id(OPERATOR))[0]
        else:
            made = login(OPERATOR, "cookie" if kind == "cookie" else "token")
        credential = _remember(dataclasses.replace(made, operator=True))
        with _lock:
            _operators.setdefault(kind, credential)
            credential = _operators[kind]
    return credential


_victims: dict[int, str] = {}
_serial = iter(range(1, 1 << 62))


def victim(number: int) -> str:
    """The id of the throwaway user `api-fuzz-victim-NUMBER`, made on first use."""
    with _lock:
        known = _victims.get(number)
    if known is None:
        name = f"api-fuzz-victim-{number}"
        response = requests.post(
            BASE + "/v1/admin/users",
            json={"username": name, "password": PASSWORD},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=TIMEOUT,
        )
        known = response.json()["id"] if response.status_code == 201 else user_id(name)
        with _lock:
            _victims.setdefault(number, known)
            known = _victims[number]
    return known


def protected_user_ids() -> set[str]:
    return {user_id(USER), user_id(DESTROYER), user_id(OPERATOR)}


def protected_session_ids() -> set[str]:
    with _lock:
        return {credential.session_id for credential in _known.values() if credential.session_id}


def _base64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


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
        if "adminKey" in schemes:
            pick = case_hash(case, "admin") % 8
            if pick < 4:
                return _remember(Credential("admin-key", ADMIN_KEY))
            kind = KINDS[case_hash(case, "kind") % len(KINDS)]
            return operator(kind) if pick < 7 else reader(kind)
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

    elif op.startswith("admin"):
        admin_values(case, op, choice)

    # A foreign Origin on some cookie-authenticated unsafe requests: 403 AUTH_1011.
    if credential is not None and credential.kind == "cookie" and case.method.upper() in UNSAFE and choice % 8 == 6:
        headers["Origin"] = FOREIGN_ORIGIN
    if headers and case.headers is None:
        case.headers = headers


def admin_values(case, op: str, choice: int) -> None:
    """Real values for the admin operations, and no case that changes a user this file needs."""
    path = case.path_parameters if case.path_parameters is not None else {}
    query = case.query if case.query is not None else {}
    if op == "adminCreateUser" and isinstance(case.body, dict):
        # The fuzzer draws few names (the document's example, names it saw in answers), so
        # most would be `409 USER_1001`: half the valid ones are made unique.
        name = case.body.get("username")
        if isinstance(name, str) and USERNAME.fullmatch(name) and choice % 2 == 0:
            with _lock:
                number = next(_serial)
            case.body["username"] = f"{name[:200]}-{number}"
    elif op in USER_CHANGING and isinstance(path.get("id"), str):
        aimed_at_ours = path["id"] in protected_user_ids()
        if aimed_at_ours or choice % 2 == 0:
            path["id"] = victim(choice % VICTIMS)
            if op != "adminUpdateUser":
                # Something to revoke.
                service_session(path["id"])
    elif op == "adminGetUser" and isinstance(path.get("id"), str) and choice % 2 == 0:
        path["id"] = user_id(USER) if choice % 4 == 0 else victim(choice % VICTIMS)
    elif op == "adminRevokeSession" and isinstance(path.get("id"), str):
        if path["id"] in protected_session_ids() or choice % 2 == 0:
            path["id"] = service_session("api-fuzz-victim")[0].session_id
    elif op == "adminListSessions":
        if isinstance(query.get("cursor"), str) and SESSION_CURSOR.fullmatch(query["cursor"]):
            # The service's form: base64url of `milliseconds:id`.
            query["cursor"] = _base64url(f"{1_700_000_000_000 + choice % 10**11}:ses_{_base64url(str(choice))[:22]}")
        if isinstance(query.get("userId"), str) and choice % 4 == 0:
            query["userId"] = user_id(USER)
        if isinstance(query.get("username"), str) and choice % 4 == 1:
            query["username"] = USER.upper()
    elif op == "adminListUsers":
        cursor = query.get("cursor")
        if isinstance(cursor, str) and USER_CURSOR.fullmatch(cursor):
            # The service's form: base64url of a username (any text of at most 1024 bytes).
            query["cursor"] = _base64url(cursor[:256] if choice % 2 else USER[: choice % len(USER)])
        if isinstance(query.get("prefix"), str) and choice % 4 == 0:
            query["prefix"] = "API-FUZZ-" if choice % 8 == 0 else USER[:2]


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

# The operations whose body has a `password` that the service bounds in bytes of UTF-8, which
# the document can bound only in characters (`minLength`, `maxLength`).
PASSWORD_BYTES = {"logIn": (1, 1024), "adminCreateUser": (8, 1024), "adminSetUserPassword": (8, 1024)}
_spec = None


def _resolved(node):
    """`node` with every local `$ref` of the document replaced by what it names."""
    global _spec
    if _spec is None:
        with open(SPEC_PATH) as file:
            _spec = yaml.safe_load(file)
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target = _spec
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            return _resolved({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        return {key: _resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value) for value in node]
    return node


def _password_verdicts(case) -> tuple[bool, bool] | None:
    """For a body with a string `password` of an operation of PASSWORD_BYTES: whether its length
    is valid in characters (as the document says it) and in bytes (as the service counts)."""
    bounds = PASSWORD_BYTES.get(operation_id(case.operation))
    body = case.body
    if bounds is None or not isinstance(body, dict) or not isinstance(body.get("password"), str):
        return None
    password = body["password"]
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: not JSON the service takes
        return None
    return bounds[0] <= len(password) <= bounds[1], bounds[0] <= size <= bounds[1]


def _valid_but_for_password_length(case) -> bool:
    """Whether the body is schema-valid once its password has a length valid in both counts."""
    raw = (case.operation.definition.raw or {}).get("requestBody") or {}
    schema = (((_resolved(raw).get("content") or {}).get("application/json") or {}).get("schema"))
    if schema is None:
        return False
    low = PASSWORD_BYTES[operation_id(case.operation)][0]
    return jsonschema_rs.validator_for(schema).is_valid({**case.body, "password": "p" * low})


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops three kinds of failure that say nothing about Tessera:

    - ST202 ("schema-valid request rejected") for a request whose path parameter is not
      schema-valid. Schemathesis 4.32.5 revalidates a case whose path parameters changed (a
      stateful link setting `name`, say) against their percent-encoded form, so `%1F` passes a
      pattern that forbids U+001F and a negative case is judged as a positive one.
    - ST301 ("deleted resource still available") on the proxy: what a DELETE forwarded to the
      upstream site does is the site's business (the fake one deletes nothing), and Tessera
      passes the site's answers on as they come.
    - ST201/ST202 that only a password's length explains: the service counts a password's
      length in bytes of UTF-8 (8 to 1024 for the admin API, 1 to 1024 for a login), and a JSON
      Schema can count only characters. `minLength: 8` calls `"ééééé"` (10 bytes) too short,
      which the service rightly takes; `maxLength: 1024` calls 1024 `é`s valid, which it rightly
      refuses. Dropped only when the rest of the body is schema-valid and the service's answer
      is what the byte count says.
    """
    code = getattr(failure, "code", None)
    verdicts = _password_verdicts(case) if code in ("ST201", "ST202") else None
    if verdicts is not None and verdicts[0] != verdicts[1]:
        by_characters, by_bytes = verdicts
        explained = (
            (code == "ST201" and by_bytes and response.status_code < 300 and _valid_but_for_password_length(case))
            or (code == "ST202" and not by_bytes and response.status_code == 400 and _error_code(response) == "REQ_1003")
        )
        if explained:
            with _stats_lock:
                _stats["dropped_failures"][f"{code} {case.operation.label} (a password's length in bytes, not characters)"] += 1
            return False
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
    "admin_refused_not_operator": 0,
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
                _stats["by_kind"][credential.label]["sent"] += 1
                if status == 401:
                    code = _error_code(response) or "?"
                    _stats["secured_real_401"][f"{operation.label} {code}"] += 1
                    _stats["by_kind"][credential.label]["401"] += 1
                else:
                    _stats["secured_real_accepted"] += 1
                    if status == 403 and _error_code(response) == "AUTH_1005":
                        _stats["admin_refused_not_operator"] += 1
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
                for pool in (_readers, _operators):
                    for kind, current in list(pool.items()):
                        if current.token == credential.token:
                            del pool[kind]
                            with _stats_lock:
                                _stats["readers_replaced"][current.label] += 1


@atexit.register
def _write_stats():
    with _stats_lock:
        data = json.loads(json.dumps(_stats, default=dict))
    try:
        with open(STATS_PATH, "w") as file:
            json.dump(data, file, indent=1, sort_keys=True)
    except OSError:
        pass
