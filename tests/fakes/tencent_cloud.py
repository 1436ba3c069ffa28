"""Local fakes of Tencent Cloud API 3.0 endpoints (SMS SendSms, FaceID DetectAuth and
GetDetectInfoEnhanced), listening on 127.0.0.1 in a background thread.

Each fake checks every request the way Tencent does before it looks at the action: it
recomputes the TC3-HMAC-SHA256 signature from the headers and body it received, with its own
code (`reference_signature`, written from Tencent's "Signature v3" document, apart from the
SDK that signs our requests) and the test's secret, and answers AuthFailure.* when they
differ. This is the one place in the project that computes TC3 by hand: the adapters sign
through tencentcloud-sdk-python.

Tests steer a fake through plain attributes: `answers` (SMS), `sessions`/`finish`/`error`
(FaceID), `http_failures`, `garbage`, `delay` (seconds before every answer: a slow gateway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def reference_signature(
    *, secret_key: str, timestamp: str, service: str, headers: dict[str, str], body: bytes
) -> str:
    """TC3-HMAC-SHA256 of a POST to "/" as Tencent's "Signature v3" document describes it:
    `headers` are the signed headers (any case), as sent."""
    signed = {name.lower(): value.strip().lower() for name, value in headers.items()}
    names = sorted(signed)
    canonical = (
        "POST\n/\n\n"
        + "".join(f"{name}:{signed[name]}\n" for name in names)
        + "\n"
        + ";".join(names)
        + "\n"
        + hashlib.sha256(body).hexdigest()
    )
    day = time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/tc3_request\n"
        f"{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencentCloud:
    """One API 3.0 endpoint of one service. Subclasses answer the actions (`answer`)."""

    service = ""
    version = ""
    actions: tuple[str, ...] = ()

    def __init__(self, *, secret_id: str, secret_key: str, region: str | None = None) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.region = region  # None: X-TC-Region not checked; "": must be absent
        self.requests: list[dict[str, Any]] = []  # every request, with what the fake concluded
        self.http_failures = 0  # the next N requests get a bare HTTP 500
        self.garbage = 0  # the next N requests get a 200 that is not Tencent's JSON
        self.delay = 0.0  # seconds to wait before every answer
        self.release = threading.Event()  # lets "hang" answers finish at close
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake._handle(self, body)

            def log_message(self, format, *args):  # noqa: A002 (quiet test output)
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval keeps shutdown() (which waits for the next poll) quick.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._closed = False

    def start(self) -> FakeTencentCloud:
        self._thread.start()
        return self

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self._thread.join()

    # What Tencent checks, in its order: the signature, then action, version and region.
    def verify(self, headers, body: bytes) -> tuple[str, str] | None:
        auth = AUTH_RE.match(headers.get("Authorization", ""))
        if auth is None:
            return "AuthFailure.InvalidAuthorization", "Authorization header malformed"
        if auth["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        timestamp = headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit():
            return "MissingParameter", "X-TC-Timestamp"
        if auth["day"] != time.strftime("%Y-%m-%d", time.gmtime(int(timestamp))):
            return "AuthFailure.SignatureFailure", "credential date is not the UTC date"
        names = auth["signed"].split(";")
        if auth["service"] != self.service or not {"content-type", "host"} <= set(names):
            return "AuthFailure.SignatureFailure", "wrong service or signed headers"
        if any(headers.get(name) is None for name in names):
            return "AuthFailure.SignatureFailure", "a signed header is missing"
        expected = reference_signature(
            secret_key=self.secret_key,
            timestamp=timestamp,
            service=self.service,
            headers={name: headers[name] for name in names},
            body=body,
        )
        if not hmac.compare_digest(expected, auth["sig"]):
            return "AuthFailure.SignatureFailure", "signature mismatch"
        if headers.get("X-TC-Action") not in self.actions:
            return "InvalidAction", "action"
        if headers.get("X-TC-Version") != self.version:
            return "NoSuchVersion", "version"
        if self.region is not None and (headers.get("X-TC-Region") or "") != self.region:
            return "UnsupportedRegion", "region"
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            return "InvalidParameter", "content type"
        return None

    def answer(self, action: str, data: dict[str, Any], record: dict[str, Any]) -> dict | None:
        """The Response object for a verified request; None: hang until close."""
        raise NotImplementedError

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except ValueError:
            data = None
        record = {
            "action": handler.headers.get("X-TC-Action"),
            "headers": dict(handler.headers.items()),
            "raw": body,
            "body": data,
            "rejected": self.verify(handler.headers, body),
        }
        with self._lock:
            self.requests.append(record)
            failing = self.http_failures > 0
            self.http_failures -= int(failing)
            garbage = not failing and self.garbage > 0
            self.garbage -= int(garbage)
        if self.delay:
            time.sleep(self.delay)  # the slow gateway this fake plays
        if failing:
            self._reply(handler, 500, b"upstream failure", "text/plain")
            return
        if garbage:
            self._reply(handler, 200, b"<html>gateway</html>", "text/html")
            return
        request_id = str(uuid.uuid4())
        if record["rejected"] or not isinstance(data, dict):
            code, message = record["rejected"] or ("InvalidParameter", "body is not JSON")
            payload: dict | None = {"Error": {"Code": code, "Message": message}}
        else:
            payload = self.answer(record["action"], data, record)
        if payload is None:
            self.release.wait(10)
            return
        raw = json.dumps({"Response": {**payload, "RequestId": request_id}}, ensure_ascii=False)
        self._reply(handler, 200, raw.encode(), "application/json")

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, raw: bytes, ctype: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:
            pass  # the client gave up (timeout test)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}}


# ------------------------------------------------------------------------------------ SMS


@dataclass
class Answer:
    kind: str  # "ok", "error" (Response.Error), "status" (a non-Ok SendStatus), "hang"
    code: str = ""
    message: str = ""


class FakeSms(FakeTencentCloud):
    """SendSms (2021-01-11). Checks the application, signature name and template the test
    configured, then answers as told by `answers` (consumed in order; then "ok")."""

    service = "sms"
    version = "2021-01-11"
    actions = ("SendSms",)

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        region: str,
        sdk_app_id: str,
        sign_name: str,
        template_id: str,
    ) -> None:
        super().__init__(secret_id=secret_id, secret_key=secret_key, region=region)
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.template_id = template_id
        self.answers: list[Answer] = []
        self._serial = 0

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def serials(self) -> list[str]:
        return [r["serial"] for r in self.requests if r.get("serial")]

    def sent(self) -> list[dict[str, Any]]:
        """The accepted SendSms bodies, in order."""
        return [r["body"] for r in self.requests if r.get("serial")]

    def _check(self, data: dict[str, Any]) -> dict[str, Any] | None:
        phones = data.get("PhoneNumberSet")
        if not (
            isinstance(phones, list)
            and phones
            and all(isinstance(p, str) and p.startswith("+") for p in phones)
        ):
            return _error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet")
        if data.get("SmsSdkAppId") != self.sdk_app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId")
        if data.get("SignName") != self.sign_name:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved", "SignName")
        if data.get("TemplateId") != self.template_id:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved", "TemplateId")
        params = data.get("TemplateParamSet")
        if not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
            return _error("InvalidParameterValue.TemplateParameterFormatError", "params")
        return None

    def answer(self, action: str, data: dict[str, Any], record: dict[str, Any]) -> dict | None:
        with self._lock:
            answer = self.answers.pop(0) if self.answers else Answer("ok")
            self._serial += 1
            number = self._serial
        if answer.kind == "hang":
            return None
        refused = self._check(data)
        if refused:
            record["rejected"] = (refused["Error"]["Code"], refused["Error"]["Message"])
            return refused
        if answer.kind == "error":
            return _error(answer.code, answer.message)
        ok = answer.kind == "ok"
        serial = f"2433:{number:024d}" if ok else ""
        record["serial"] = serial
        return {
            "SendStatusSet": [
                {
                    "SerialNo": serial,
                    "PhoneNumber": data["PhoneNumberSet"][0],
                    "Fee": 1 if ok else 0,
                    "SessionContext": "",
                    "Code": "Ok" if ok else answer.code,
                    "Message": "send success" if ok else answer.message,
                    "IsoCode": "CN",
                }
            ]
        }


# --------------------------------------------------------------------------------- FaceID


class FakeFaceId(FakeTencentCloud):
    """DetectAuth and GetDetectInfoEnhanced (2018-03-01). Keeps sessions by BizToken; a test
    finishes them (`finish`) or makes every answer an error (`error`)."""

    service = "faceid"
    version = "2018-03-01"
    actions = ("DetectAuth", "GetDetectInfoEnhanced")

    def __init__(self, *, secret_id: str, secret_key: str, rule_id: str) -> None:
        super().__init__(secret_id=secret_id, secret_key=secret_key, region="")
        self.rule_id = rule_id
        self.sessions: dict[str, dict[str, Any]] = {}
        self.error: tuple[str, str] | None = None

    def finish(self, biz_token: str, *, err_code: int = 0, sim: str | None = "95.51") -> None:
        self.sessions[biz_token]["result"] = {"ErrCode": err_code, "Sim": sim}

    def answer(self, action: str, data: dict[str, Any], record: dict[str, Any]) -> dict | None:
        if self.error:
            return _error(*self.error)
        if data.get("RuleId") != self.rule_id:
            return _error("InvalidParameterValue.RuleId", "RuleId")
        if action == "DetectAuth":
            token = str(uuid.uuid4()).upper()
            self.sessions[token] = {"extra": data.get("Extra", ""), "result": None, "request": data}
            return {
                "BizToken": token,
                "Url": f"https://open.weixin.qq.com/connect/oauth2/authorize?token={token}",
            }
        session = self.sessions.get(data.get("BizToken", ""))
        if session is None:
            return _error("InvalidParameter", "非法BizToken。")
        result = session["result"] or {"ErrCode": None, "Sim": None}
        return {
            "Text": {
                "ErrCode": result["ErrCode"],
                "ErrMsg": None if result["ErrCode"] is None else "成功",
                "IdCard": session["request"]["IdCard"],
                "Name": session["request"]["Name"],
                "Sim": result["Sim"],
                "Extra": session["extra"],
                "LiveStatus": result["ErrCode"],
            },
            # Only with InfoType 0/3 would the best frame come back.
            "BestFrame": {"BestFrame": "/9j/4AAQSk"} if data.get("InfoType") != "1" else None,
            "IdCardData": None,
            "VideoData": None,
        }
