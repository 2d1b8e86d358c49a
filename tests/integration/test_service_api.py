"""The service's HTTP surface over a real ledger: the JSON API with exact values after a real
import with one bad file, its parameters' errors, every route against the OpenAPI document with
generated requests, /metrics parsed as Prometheus reads it, and the token."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode
from starlette.applications import Starlette

from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.runtime.report import RunReport
from sluice.runtime.session import LedgerSession
from sluice.service import ServiceSettings, create_app
from sluice.service.auth import COOKIE, check_binding
from sluice.service.openapi import document
from sluice.status import DURATION_BUCKETS
from tests.integration.hostile import Conn, events_feed, shard, write

TOKEN = "s3cret-t0ken"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: Generated requests per operation and mode.
EXAMPLES = 30
BAD_VALUE = 'invalid input syntax for type bigint: "xyz"'


class Client:
    """A synchronous HTTP client of an ASGI app, in process (httpx over its ASGI transport,
    driven from an event loop in a thread); keeps cookies like a browser."""

    def __init__(self, portal: BlockingPortal, app: Starlette) -> None:
        self._portal = portal
        transport = httpx.ASGITransport(app=app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(lambda: self._client.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(lambda: self._client.post(path, **kwargs))

    def ok(self, path: str, **kwargs: Any) -> Any:
        """The JSON of a 200 answer."""
        response = self.get(path, **kwargs)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@pytest.fixture
def clients(engine: Engine) -> Iterator[Any]:
    """Makes clients of the app over the test's engine (with or without a token)."""
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal())

        def make(token: str | None = None) -> Client:
            client = Client(portal, create_app(engine, ServiceSettings(token=token)))
            stack.callback(client.close)
            return client

        yield make


@pytest.fixture
def client(clients: Any) -> Client:
    made: Client = clients()
    return made


@dataclass(frozen=True)
class Imported:
    """The ledger after one real import: two good files, one bad (line 2, column event_id)."""

    bucket: Path
    report: RunReport
    ids: dict[str, int]

    @property
    def bad_object(self) -> str:
        return f"file://{(self.bucket / 'e-3.csv').resolve()}"

    @property
    def bad_error(self) -> str:
        return f"{self.bad_object}, line 2, column event_id: {BAD_VALUE}"


@pytest.fixture
def imported(engine: Engine, tmp_path: Path, db: Conn) -> Imported:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1, 100))
    write(bucket, "e-2.csv", shard(2, 50))
    write(bucket, "e-3.csv", b"30000,a\nxyz,b\n")
    report = engine.run_feeds([events_feed(str(bucket), serving=True)])
    ids = {str(k): int(i) for k, i in db.execute("SELECT key, id FROM sluice.loads").fetchall()}
    return Imported(bucket, report, ids)


# -- the JSON API: exact values -------------------------------------------------------------


def test_status_tells_the_ledger_after_an_import_with_one_bad_file(
    client: Client, imported: Imported
) -> None:
    status = client.ok("/api/status")

    assert status["loads"] == {"events": {"errored": 1, "loaded": 2}}
    assert status["leased"] == []
    [error] = status["errors"]
    assert error["load_id"] == imported.ids["e-3.csv"]
    assert (error["feed"], error["object"], error["status"]) == (
        "events",
        imported.bad_object,
        "errored",
    )
    assert error["error"] == imported.bad_error
    [run] = status["runs"]
    assert run["run_id"] == imported.report.run_id
    assert (run["command"], run["claimed"], run["loaded"], run["errored"]) == ("import", 3, 2, 1)
    assert run["rows"]["in"] == run["rows"]["inserted"] == 150
    [target] = status["targets"]
    assert (target["name"], target["serving_view"], target["stale"]) == (
        "public.events",
        "public.view_events",
        False,
    )
    assert client.ok("/api/status", params={"errors": 0, "runs": 0})["errors"] == []


def test_loads_filter_by_status_and_feed_newest_first(client: Client, imported: Imported) -> None:
    ids = imported.ids
    newest_first = sorted(ids.values(), reverse=True)

    assert [load["id"] for load in client.ok("/api/loads")] == newest_first
    [bad] = client.ok("/api/loads", params={"status": "errored"})
    assert (bad["id"], bad["key"], bad["error"]) == (ids["e-3.csv"], "e-3.csv", imported.bad_error)
    loaded = client.ok("/api/loads", params={"status": "loaded", "feed": "events"})
    assert sorted(load["key"] for load in loaded) == ["e-1.csv", "e-2.csv"]
    assert [load["id"] for load in client.ok("/api/loads?limit=1")] == newest_first[:1]
    assert client.ok("/api/loads", params={"status": "ingesting"}) == []


def test_one_load_has_its_rows_bytes_and_error(
    client: Client, imported: Imported, db: Conn
) -> None:
    good = client.ok(f"/api/loads/{imported.ids['e-1.csv']}")
    [(size,)] = db.execute("SELECT size FROM sluice.loads WHERE key = 'e-1.csv'").fetchall()
    assert (good["status"], good["attempts"], good["error"]) == ("loaded", 1, None)
    assert good["counts"] == {
        "rows_in": 100,
        "inserted": 100,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "deleted": 0,
    }
    assert good["bytes_read"] == good["size"] == size

    bad = client.ok(f"/api/loads/{imported.ids['e-3.csv']}")
    assert (bad["status"], bad["error"], bad["object"]) == (
        "errored",
        imported.bad_error,
        imported.bad_object,
    )
    assert bad["error_detail"] == {
        "object": imported.bad_object,
        "line": 2,
        "column": "event_id",
        "reason": BAD_VALUE,
    }


def test_runs_feeds_and_throughput_add_up(client: Client, imported: Imported, db: Conn) -> None:
    [run] = client.ok("/api/runs")
    assert run["run_id"] == imported.report.run_id
    assert (run["status"], run["kind"]) == ("failed", "import")
    assert [hook["view"] for hook in run["hooks"]] == ["public.view_events"]

    [feed] = client.ok("/api/feeds")
    assert (feed["name"], feed["active"], feed["source"]) == ("events", True, str(imported.bucket))
    assert (feed["waiting"], feed["leased"], feed["done"], feed["errored"]) == (0, 0, 2, 1)

    points = client.ok("/api/throughput", params={"minutes": 60})
    [(done_bytes,)] = db.execute(
        "SELECT sum(bytes_read)::bigint FROM sluice.loads WHERE status = 'loaded'"
    ).fetchall()
    assert {point["kind"] for point in points} == {"load"}
    assert sum(point["rows"] for point in points) == 150
    assert sum(point["units"] for point in points) == 2
    assert sum(point["bytes"] for point in points) == done_bytes
    assert client.ok("/api/throughput", params={"minutes": 0}) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/status?errors=x", "errors must be an integer, got 'x'"),
        ("/api/status?runs=-1", "runs must be within 0..1000, got -1"),
        ("/api/loads?limit=1001", "limit must be within 0..1000, got 1001"),
        ("/api/loads?limit=2.5", "limit must be an integer, got '2.5'"),
        ("/api/loads?status=done", "unknown status 'done' (one of: ready, ready_for_ingesting, "),
        ("/api/loads/abc", "load_id must be an integer, got 'abc'"),
        ("/api/runs?limit=many", "limit must be an integer, got 'many'"),
        ("/api/throughput?minutes=10081", "minutes must be within 0..10080, got 10081"),
        ("/api/loads?limit=", "limit is empty; give a value or leave it out"),
        ("/api/loads?status=", "status is empty; give a value or leave it out"),
        ("/api/loads?limit=1&limit=2", "limit is given 2 times; give it once"),
    ],
)
def test_a_bad_parameter_is_a_400_with_one_clear_error(
    client: Client, imported: Imported, path: str, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.text
    [(key, text)] = response.json().items()
    assert key == "error"
    assert text.startswith(message), text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/loads/999999", "there is no load 999999"),
        ("/api/loads/0", "there is no load 0"),
        ("/api/loads/99999999999999999999", "there is no load 99999999999999999999"),
        ("/api/loads?feed=nosuch", "there is no feed 'nosuch' (registered: events)"),
        ("/api/loads?feed=a%00b", "there is no feed 'a\\x00b'"),
        ("/api/nosuch", "no such path: /api/nosuch"),
    ],
)
def test_an_unknown_load_feed_or_path_is_a_404(
    client: Client, imported: Imported, path: str, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.json() == {"error": message}


def test_a_method_the_route_does_not_take_is_a_405_in_json(client: Client) -> None:
    response = client.post("/api/status")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json() == {"error": "POST is not allowed on /api/status (allowed: GET, HEAD)"}


# -- every route against the OpenAPI document ---------------------------------------------------


@pytest.fixture
def served(engine: Engine, imported: Imported) -> Starlette:
    """The app with a token (so that its security is checked too), over a ledger with loaded,
    errored and waiting loads."""
    engine.retry(load_ids=[imported.ids["e-3.csv"]])  # one load waits in the queue
    return create_app(engine, ServiceSettings(token=TOKEN))


PATHS = sorted(document()["paths"])
#: The operations that take parameters, for requests that break their schemas.
WITH_PARAMETERS = [path for path in PATHS if document()["paths"][path]["get"].get("parameters")]


@pytest.mark.parametrize(
    ("path", "mode"),
    [(path, GenerationMode.POSITIVE) for path in PATHS]
    + [(path, GenerationMode.NEGATIVE) for path in WITH_PARAMETERS],
)
def test_every_route_answers_as_its_schema_says(
    served: Starlette, path: str, mode: GenerationMode
) -> None:
    """Generated requests, well formed (positive) or breaking the schema (negative): never a
    500, every answer as the document the service serves describes it (status, content type,
    body), every operation refusing a request without the token."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", served, headers=BEARER)
    operation = schema[path]["GET"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no example database left in the working tree
        # The same cases on every run: a "negative" case that is valid on the wire (an array
        # of one integer sent as that integer, an Authorization header the token replaces)
        # fails by chance otherwise.
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=BEARER)
        assert response.status_code < 500

    check()


def test_the_document_names_every_route_of_the_api(clients: Any) -> None:
    served = clients(TOKEN).ok("/openapi.json", headers=BEARER)
    assert served == document(token=True)
    paths = set(served["paths"])
    assert paths == {
        "/api/status",
        "/api/loads",
        "/api/loads/{load_id}",
        "/api/runs",
        "/api/feeds",
        "/api/throughput",
        "/metrics",
        "/readyz",
        "/healthz",
    }


# -- /metrics -------------------------------------------------------------------------------------


def scrape(client: Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of /metrics, by sample name and then by its sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


FEED = (("feed", "events"), ("kind", "load"))


def test_metrics_count_the_ledger(
    client: Client, imported: Imported, engine: Engine, db: Conn
) -> None:
    engine.retry(load_ids=[imported.ids["e-3.csv"]])  # back in the queue: one unit waits
    samples = scrape(client)

    assert samples["sluice_units"] == {
        (*FEED, ("status", "loaded")): 2.0,
        (*FEED, ("status", "ready")): 1.0,
    }
    [(rows, data)] = db.execute(
        "SELECT sum(rows_in)::bigint, sum(bytes_read)::bigint FROM sluice.loads "
        "WHERE status = 'loaded'"
    ).fetchall()
    assert samples["sluice_rows_total"] == {FEED: 150.0} == {FEED: float(rows)}
    assert samples["sluice_bytes_total"] == {FEED: float(data)}
    assert samples["sluice_queue_depth"] == {FEED: 1.0}
    [(age,)] = db.execute(
        "SELECT EXTRACT(EPOCH FROM now() - discovered_at)::float8 FROM sluice.loads "
        "WHERE key = 'e-3.csv'"
    ).fetchall()
    assert 0 < samples["sluice_oldest_ready_age_seconds"][FEED] <= age + 1e-6


def test_metrics_histogram_of_unit_durations(client: Client, imported: Imported, db: Conn) -> None:
    samples = scrape(client)
    durations = [
        float(seconds)
        for (seconds,) in db.execute(
            "SELECT EXTRACT(EPOCH FROM finished_at - started_at)::float8 FROM sluice.loads "
            "WHERE status = 'loaded'"
        ).fetchall()
    ]
    buckets = samples["sluice_unit_duration_seconds_bucket"]
    for bound in DURATION_BUCKETS:
        le = "+Inf" if math.isinf(bound) else repr(bound)
        expected = sum(1 for seconds in durations if seconds <= bound)
        assert buckets[(("feed", "events"), ("le", le))] == expected, le
    feed = (("feed", "events"),)
    assert samples["sluice_unit_duration_seconds_count"] == {feed: 2.0}
    assert samples["sluice_unit_duration_seconds_sum"][feed] == pytest.approx(sum(durations))


def test_metrics_refresh_seconds_and_workers(
    client: Client, imported: Imported, engine: Engine, db: Conn
) -> None:
    [(hooks,)] = db.execute("SELECT hooks FROM sluice.runs").fetchall()
    [refresh] = [hook for hook in hooks if hook["kind"] == "refresh"]
    samples = scrape(client)
    assert samples["sluice_serving_refresh_seconds"] == {
        (("view", "public.view_events"),): refresh["seconds"]
    }
    assert samples["sluice_workers"] == {(("kind", "service"),): 0.0, (("kind", "worker"),): 0.0}

    with LedgerSession(engine.db, "run", kind="service") as session:
        assert scrape(client)["sluice_workers"][(("kind", "service"),)] == 1.0
        session.finish("succeeded")
    assert scrape(client)["sluice_workers"][(("kind", "service"),)] == 0.0


def test_metrics_of_an_empty_ledger(client: Client) -> None:
    samples = scrape(client)
    assert "sluice_units" not in samples
    assert samples["sluice_workers"] == {(("kind", "service"),): 0.0, (("kind", "worker"),): 0.0}


# -- the token --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "example.org"])
def test_listening_beyond_the_loopback_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="SLUICE_HTTP_TOKEN"):
        check_binding(host, None)
    check_binding(host, TOKEN)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_loopback_needs_no_token(host: str) -> None:
    check_binding(host, None)


def test_without_the_token_a_request_is_refused_in_json(clients: Any, imported: Imported) -> None:
    client = clients(TOKEN)
    for path in ("/api/status", "/api/loads", "/metrics", "/readyz", "/openapi.json", "/"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json() == {
            "error": "a token is required (Authorization: Bearer <token>, or ?token=<token>)"
        }
    assert client.get("/api/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/status", params={"token": "wrong"}).status_code == 401
    assert client.get("/api/status", headers={"Cookie": f"{COOKIE}=wrong"}).status_code == 401
    assert client.ok("/healthz") == {"ok": True}  # a liveness probe carries no token


def test_the_token_as_bearer_or_parameter_then_as_the_cookie(
    clients: Any, imported: Imported
) -> None:
    client = clients(TOKEN)
    assert client.ok("/api/status", headers=BEARER)["loads"] == {
        "events": {"errored": 1, "loaded": 2}
    }
    assert "set-cookie" not in client.get("/api/feeds", headers=BEARER).headers

    response = client.get("/api/feeds", params={"token": TOKEN})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    # From now on the browser's cookie is enough.
    assert client.get("/api/status").status_code == 200
    assert client.get("/metrics").status_code == 200

    document = clients(TOKEN).ok("/openapi.json", headers=BEARER)
    assert document["security"] == [{"bearer": []}, {"query": []}, {"cookie": []}]
    assert "security" not in clients().ok("/openapi.json")
