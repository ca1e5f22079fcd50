"""Sync and async clients of the portal's REST API (``/api/v1``).

Both share the request building and answer handling below; only the transport
differs. Retries: connection errors, 429 and 5xx are retried with exponential
backoff. A submission always carries an ``Idempotency-Key`` (the caller's, or a
fresh one reused across its own retries), so retrying it never creates a second
case.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from hitl_portal_client.errors import DecisionTimeout, HITLError

DONE = frozenset(("decided", "auto_accepted"))
MAX_WAIT_SECONDS = 60
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    # Seconds the server may hold the request (long-polls), added to the client's timeout.
    hold: float = 0.0


def _submission(
    *,
    system: str,
    intervention_point: str,
    external_id: str,
    input: Mapping[str, Any] | None,
    prediction: Mapping[str, Any] | None,
    generation: Mapping[str, Any] | None,
    action: Mapping[str, Any] | None,
    subject: Mapping[str, Any] | None,
    callback_url: str | None,
    expires_at: datetime | str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"system": system, "intervention_point": intervention_point, "external_id": external_id}
    optional = {"input": input, "prediction": prediction, "generation": generation, "action": action,
                "subject": subject, "callback_url": callback_url}
    body.update({key: dict(value) if isinstance(value, Mapping) else value
                 for key, value in optional.items() if value is not None})
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
    return body


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise HITLError(f"{response.request.method} {response.request.url.path}: {response.status_code} {body}",
                        status=response.status_code, body=body)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


class _Base:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.5) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def _delay(self, attempt: int) -> float:
        return self.backoff * (2**attempt)

    @staticmethod
    def _submit_request(body: dict[str, Any], idempotency_key: str | None) -> _Request:
        return _Request("POST", "/api/v1/cases/", json=body,
                        headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def _wait_request(case_id: int, timeout: int) -> _Request:
        timeout = max(0, min(MAX_WAIT_SECONDS, int(timeout)))
        return _Request("GET", f"/api/v1/cases/{case_id}/wait/", params={"timeout": timeout}, hold=timeout)


class Client(_Base):
    """Synchronous client. ``Client(base_url, token)``; usable as a context manager."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, token, timeout=timeout, retries=retries, backoff=backoff)
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: _Request) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(request.method, request.path, json=request.json,
                                              params=request.params, headers=request.headers,
                                              timeout=self.timeout + request.hold)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(self._delay(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(self._delay(attempt))
                continue
            return _answer(response)
        raise AssertionError("unreachable")

    def submit_case(self, *, system: str, intervention_point: str, external_id: str,
                    input: Mapping[str, Any] | None = None, prediction: Mapping[str, Any] | None = None,
                    generation: Mapping[str, Any] | None = None, action: Mapping[str, Any] | None = None,
                    subject: Mapping[str, Any] | None = None, callback_url: str | None = None,
                    expires_at: datetime | str | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /cases/``: the 201 body ``{id, external_id, status, routing, final_label}``."""
        body = _submission(system=system, intervention_point=intervention_point, external_id=external_id,
                           input=input, prediction=prediction, generation=generation, action=action,
                           subject=subject, callback_url=callback_url, expires_at=expires_at)
        return self._send(self._submit_request(body, idempotency_key))

    def get_case(self, case_id: int) -> dict[str, Any]:
        return self._send(_Request("GET", f"/api/v1/cases/{case_id}/"))

    def wait(self, case_id: int, *, timeout: int = 30) -> dict[str, Any]:
        """One long-poll: the case once decided, or its current state after ``timeout`` (≤ 60) seconds."""
        return self._send(self._wait_request(case_id, timeout))

    def wait_for_decision(self, case_id: int, *, timeout: float | None = None) -> dict[str, Any]:
        """Long-poll until the case is decided; ``DecisionTimeout`` after ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = MAX_WAIT_SECONDS if deadline is None else deadline - time.monotonic()
            case = self.wait(case_id, timeout=int(max(0, min(MAX_WAIT_SECONDS, remaining))))
            if case["status"] in DONE:
                return case
            if deadline is not None and time.monotonic() >= deadline:
                raise DecisionTimeout(case)

    def report_outcome(self, case_id: int, *, true_label: str) -> dict[str, Any]:
        """``POST /cases/{id}/outcome/``: the ground truth, for accuracy KPIs."""
        return self._send(_Request("POST", f"/api/v1/cases/{case_id}/outcome/", json={"true_label": true_label}))


class AsyncClient(_Base):
    """Asynchronous client (same methods as ``Client``, awaited)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, token, timeout=timeout, retries=retries, backoff=backoff)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: _Request) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(request.method, request.path, json=request.json,
                                                    params=request.params, headers=request.headers,
                                                    timeout=self.timeout + request.hold)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(self._delay(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(self._delay(attempt))
                continue
            return _answer(response)
        raise AssertionError("unreachable")

    async def submit_case(self, *, system: str, intervention_point: str, external_id: str,
                          input: Mapping[str, Any] | None = None, prediction: Mapping[str, Any] | None = None,
                          generation: Mapping[str, Any] | None = None, action: Mapping[str, Any] | None = None,
                          subject: Mapping[str, Any] | None = None, callback_url: str | None = None,
                          expires_at: datetime | str | None = None,
                          idempotency_key: str | None = None) -> dict[str, Any]:
        body = _submission(system=system, intervention_point=intervention_point, external_id=external_id,
                           input=input, prediction=prediction, generation=generation, action=action,
                           subject=subject, callback_url=callback_url, expires_at=expires_at)
        return await self._send(self._submit_request(body, idempotency_key))

    async def get_case(self, case_id: int) -> dict[str, Any]:
        return await self._send(_Request("GET", f"/api/v1/cases/{case_id}/"))

    async def wait(self, case_id: int, *, timeout: int = 30) -> dict[str, Any]:
        return await self._send(self._wait_request(case_id, timeout))

    async def wait_for_decision(self, case_id: int, *, timeout: float | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = MAX_WAIT_SECONDS if deadline is None else deadline - loop.time()
            case = await self.wait(case_id, timeout=int(max(0, min(MAX_WAIT_SECONDS, remaining))))
            if case["status"] in DONE:
                return case
            if deadline is not None and loop.time() >= deadline:
                raise DecisionTimeout(case)

    async def report_outcome(self, case_id: int, *, true_label: str) -> dict[str, Any]:
        return await self._send(
            _Request("POST", f"/api/v1/cases/{case_id}/outcome/", json={"true_label": true_label})
        )
