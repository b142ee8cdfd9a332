"""HTTP with a memory: every request the kit sends is recorded as an :class:`Exchange`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from conformance.model import CaseResult, Exchange, clip

#: Headers never copied into a report.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def _printable(body: bytes, content_type: str) -> str:
    """Text bodies as text; binary MIME parts would only clutter the report."""
    return clip(body)


class Transport:
    """One httpx client against the target's base URL; ``send`` records the exchange."""

    def __init__(self, base_url: str, *, timeout: float = 60.0, verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def send(
        self,
        case: CaseResult | None,
        label: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; on transport failure record it and re-raise."""
        url = self.url(path)
        request_headers = dict(headers or {})
        exchange = Exchange(
            label=label,
            method=method,
            url=url + (("?" + str(httpx.QueryParams(params))) if params else ""),
            request_headers=_headers(request_headers),
            request_body=_printable(content or b"", request_headers.get("Content-Type", "")),
        )
        if case is not None:
            case.exchanges.append(exchange)
        try:
            response = self.client.request(
                method, url, headers=request_headers, content=content, params=params
            )
        except httpx.HTTPError as exc:
            exchange.response_body = f"transport error: {type(exc).__name__}: {exc}"
            raise
        exchange.status = response.status_code
        exchange.response_headers = _headers(dict(response.headers))
        exchange.response_body = _printable(
            response.content, response.headers.get("Content-Type", "")
        )
        return response

    def close(self) -> None:
        self.client.close()
