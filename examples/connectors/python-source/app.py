"""A pull source that polls an HTTP JSON API and turns each new item into an event.

busbar calls `poll(cursor, max)` on an interval. This source asks the API for the items after the cursor
(`GET <url>?after=<cursor>&limit=<max>`), expects a JSON array of objects with an `id`, emits one event per item
and returns the last id as the next cursor, which busbar stores durably. HTTP goes through the standard
`wasi:http` interface, allowed only to the hosts the pipeline grants.
"""

import json
from typing import List, Optional, Tuple
from urllib.parse import quote, urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import log, outgoing_handler, poll, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.busbar_connector_types import (
    Capability,
    Description,
    Error,
    Event,
    Handled,
    HttpRequest,
    Kind,
    PollResult,
)

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "source": {"type": "string", "minLength": 1},
        "detail_type": {"type": "string", "minLength": 1},
    },
    "required": ["url"],
    "additionalProperties": False,
}


def http_get(url: str) -> Tuple[int, bytes]:
    """A blocking GET over wasi:http. Raises Err(Error) on failure, retryable unless the host denied it."""
    parts = urlsplit(url)
    request = http.OutgoingRequest(http.Fields.from_list([("accept", b"application/json")]))
    request.set_method(http.Method_Get())
    request.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + ("?" + parts.query if parts.query else ""))
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(Error(message=f"GET {url}: {describe(e.value)}", retryable=not denied(e.value)))
    while True:
        result = future.get()
        if result is not None:
            break
        poll.poll([future.subscribe()])
    if isinstance(result, Err) or isinstance(result.value, Err):
        code = result.value if isinstance(result, Err) else result.value.value
        raise Err(Error(message=f"GET {url}: {describe(code)}", retryable=not denied(code)))
    response = result.value.value
    status = response.status()
    body = response.consume()
    stream = body.stream()
    chunks: List[bytes] = []
    while True:
        try:
            chunks.append(stream.blocking_read(64 * 1024))
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise Err(Error(message=f"GET {url}: reading the body failed", retryable=True))
    stream.__exit__(None, None, None)
    http.IncomingBody.finish(body)
    return status, b"".join(chunks)


def denied(code) -> bool:
    return isinstance(code, http.ErrorCode_HttpRequestDenied)


def describe(code) -> str:
    if denied(code):
        return "HTTP request denied: the host is not granted to this connector"
    return type(code).__name__.replace("ErrorCode_", "")


# componentize-py makes a fresh SourceConnector for every call into the component, so what `open` learns lives
# at module level: one component instance serves one connector task.
STATE = {"url": "", "source": "http-api", "detail_type": "item"}


class SourceConnector(exports.SourceConnector):
    def describe(self) -> Description:
        return Description(
            name="python-http-source",
            version="0.1.0",
            kind=Kind.PULL_SOURCE,
            summary="polls an HTTP JSON API for new items after a cursor",
            config_schema=json.dumps(CONFIG_SCHEMA),
            needs=[Capability.HTTP],
        )

    def open(self, config: str) -> None:
        cfg = json.loads(config)
        STATE["url"] = cfg["url"]
        STATE["source"] = cfg.get("source", "http-api")
        STATE["detail_type"] = cfg.get("detail_type", "item")
        log.log(log.Level.INFO, f"polling {STATE['url']}")

    def poll(self, cursor: Optional[str], max: int) -> PollResult:
        base, source, detail_type = STATE["url"], STATE["source"], STATE["detail_type"]
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}after={quote(cursor or '')}&limit={max}"
        status, body = http_get(url)
        if status == 429 or status >= 500:
            raise Err(Error(message=f"GET {url} answered {status}", retryable=True))
        if status != 200:
            raise Err(Error(message=f"GET {url} answered {status}", retryable=False))
        try:
            items = json.loads(body)
        except ValueError as e:
            raise Err(Error(message=f"GET {url}: the body is not JSON: {e}", retryable=False))
        if not isinstance(items, list):
            raise Err(Error(message=f"GET {url}: expected a JSON array of items", retryable=False))
        events = []
        for item in items[:max]:
            item_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            events.append(
                Event(
                    id=f"{source}-{item_id}" if item_id else "",
                    source=source,
                    detail_type=detail_type,
                    time="",
                    key=item_id.encode() or None,
                    headers=[],
                    payload=json.dumps(item).encode(),
                )
            )
            cursor = item_id or cursor
        return PollResult(events=events, cursor=cursor)

    def handle(self, request: HttpRequest) -> Handled:
        raise Err(Error(message="this connector is a pull source: it does not handle HTTP requests", retryable=False))

    def close(self) -> None:
        pass
