"""The prediction API contract (FastAPI TestClient) and a property-based run: no 5xx."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.registry import Registry
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS
from tests.model_registry import (
    lstm_weights,
    reference_forecast,
    register_legacy_model,
    register_model,
    write_daily_metrics,
)

PRICES = [10.0, 10.5, 11.0, 10.8, 11.2, 11.1, 12.0, 12.5, 12.25, 12.4]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """AAA: a version with known weights serving the LSTM at h=1 and the linear baseline at
    h=5, 10 days in Gold; BBB: a version of the older format (cannot serve)."""
    from fastapi.testclient import TestClient

    from analytics.api import create_app

    lake = tmp_path_factory.mktemp("api-lake")
    write_daily_metrics(lake, "AAA", PRICES)
    register_model(lake, "AAA", "v1")
    register_legacy_model(lake, "BBB", "v1")
    registry = Registry(lake)
    assert registry.consider("AAA", "v1", datetime.now(UTC))[0]
    assert not registry.consider("BBB", "v1", datetime.now(UTC))[0]
    with TestClient(create_app(Settings(lake_dir=lake))) as test_client:
        yield test_client


def window(n: int = 7, price: float = 20.0) -> list[dict[str, float]]:
    return [{"avg_price": price + i, "total_volume": 1000.0 + i} for i in range(n)]


def test_health_lists_models_champions_and_the_gold_version(client) -> None:
    from deltalake import DeltaTable

    body = client.get("/health").json()
    gold = DeltaTable(str(GOLD_DAILY_METRICS.path(client.app.state.settings.lake_dir)))
    assert body == {"status": "ok", "model_count": 2, "champions": {"AAA": "v1"},
                    "gold_version": gold.version()}


def test_predict_from_gold_uses_the_last_seven_days(client) -> None:
    response = client.get("/predict/AAA")
    assert response.status_code == 200
    body = response.json()
    # Fri 2012-01-13 -> Tue 2012-01-17: Mon 2012-01-16 was Martin Luther King Jr. Day, an NYSE
    # holiday (the exchange's published 2012 calendar)
    assert body["as_of"] == "2012-01-13" and body["target_date"] == "2012-01-17"
    assert body["naive_avg_price"] == PRICES[-1] and body["model_version"] == "v1"
    assert body["horizon"] == 1 and body["model"] == "lstm"
    volumes = np.array([1000.0 + 10 * i for i in range(len(PRICES))])[-7:]
    rel = reference_forecast(np.array(PRICES[-7:]), volumes, lstm_weights())
    assert body["predicted_avg_price"] == pytest.approx(PRICES[-1] * (1 + rel), rel=1e-5)
    assert body["lower_80"] < body["predicted_avg_price"] < body["upper_80"]
    # the champion's own backtest figures (the fixture's lstm row)
    assert body["backtest_rmse"] == 1.0 and body["backtest_skill"] == 0.01
    assert body["backtest_coverage_80"] == 0.79 and body["dm_p_value"] == 0.04
    # and every model's figures, as the registry holds them
    assert body["backtest"]["linear"] == pytest.approx(
        {"rmse": 1.3, "skill": 0.04, "coverage_80": 0.82, "dm_p_value": 0.07})
    assert body["backtest"]["naive"]["dm_p_value"] is None


def test_predict_five_days_ahead_names_the_linear_champion(client) -> None:
    body = client.get("/predict/AAA", params={"horizon": 5}).json()
    # five NYSE sessions after Fri 2012-01-13: 17, 18, 19, 20, 23 January (16th a holiday)
    assert body["target_date"] == "2012-01-23" and body["horizon"] == 5
    assert body["model"] == "linear" and body["dm_p_value"] == 0.07


def test_predict_from_a_window(client) -> None:
    response = client.post("/predict", json={"ticker": "AAA", "window": window()})
    assert response.status_code == 200
    body = response.json()
    assert body["naive_avg_price"] == 26.0 and body["as_of"] is None
    rel = reference_forecast(np.arange(20.0, 27.0), np.arange(1000.0, 1007.0), lstm_weights())
    assert body["predicted_avg_price"] == pytest.approx(26.0 * (1 + rel), rel=1e-5)
    days = window()
    permuted = [days[i] for i in (0, 3, 1, 5, 2, 4, 6)]  # same last day, another path to it
    other = client.post("/predict", json={"ticker": "AAA", "window": permuted}).json()
    assert other["naive_avg_price"] == 26.0
    assert other["predicted_avg_price"] != pytest.approx(body["predicted_avg_price"], rel=1e-4)


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "detail"),
    [
        ("get", "/predict/ZZZ", None, 404, "no model trained"),
        ("get", "/predict/BBB", None, 404, "older ticklake"),
        ("get", "/predict/AAA?horizon=2", None, 422, "serves horizons [1, 5], not 2"),
        ("get", "/predict/AAA?horizon=0", None, 422, "greater than or equal"),
        ("post", "/predict", {"ticker": "AAA", "window": window(), "horizon": 3}, 422,
         "not 3"),
        ("get", "/predict/not-a-ticker", None, 422, "pattern"),
        ("post", "/predict", {"ticker": "ZZZ", "window": window()}, 404, "no champion"),
        ("post", "/predict", {"ticker": "AAA", "window": window(6)}, 422, "needs exactly 7"),
        ("post", "/predict", {"ticker": "AAA", "window": window(8)}, 422, "needs exactly 7"),
        ("post", "/predict", {"ticker": "aaa", "window": window()}, 422, "pattern"),
        ("post", "/predict", {"ticker": "AAA"}, 422, "Field required"),
        ("post", "/predict", {"ticker": "AAA", "window": window(), "x": 1}, 422, "Extra"),
        ("post", "/predict", {"ticker": "AAA", "window": window(price=0.0)}, 422,
         "greater than 0"),
        ("post", "/predict", {"ticker": "AAA", "window": [
            *window(6), {"avg_price": 1.0, "total_volume": -5}]}, 422, "greater than or equal"),
        ("post", "/predict", {"ticker": "AAA", "window": [
            *window(6), {"avg_price": "NaN", "total_volume": 1}]}, 422, "finite"),
        ("post", "/predict", {"ticker": "AAA", "window": [
            *window(6), {"avg_price": 1.79e308, "total_volume": 1}]}, 422, "not finite"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(client, method, url, payload, status,
                                              detail) -> None:
    response = getattr(client, method)(url, **({"json": payload} if payload else {}))
    assert response.status_code == status, response.text
    assert detail in json.dumps(response.json()["detail"])


def test_openapi_documents_the_four_endpoints(client) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/health", "/predict/{ticker}", "/predict", "/metrics"}
    assert "404" in spec["paths"]["/predict/{ticker}"]["get"]["responses"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=9) | st.dictionaries(
        st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
DAY = st.fixed_dictionaries({
    "avg_price": st.floats() | st.integers() | st.text(max_size=5),
    "total_volume": st.floats() | st.integers(min_value=-10**20, max_value=10**20),
})
BODY = st.one_of(
    JSON,
    st.fixed_dictionaries({"ticker": st.sampled_from(["AAA", "BBB", "ZZZ", "", "a"]) | st.text(),
                           "window": st.lists(DAY, max_size=10)}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY)
def test_no_request_body_gives_a_5xx(client, body) -> None:
    content = json.dumps(body, allow_nan=True)
    response = client.post("/predict", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code < 500, (content, response.text)
    if response.status_code == 200:
        assert all(math.isfinite(v) for k, v in response.json().items()
                   if k.endswith(("price", "_80")) and v is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ticker=st.text(min_size=1, max_size=20))
def test_no_ticker_path_gives_a_5xx(client, ticker) -> None:
    response = client.get(f"/predict/{quote(ticker, safe='')}")
    assert response.status_code < 500, (ticker, response.text)



def test_metrics_count_requests_by_route_and_read_the_lake(client) -> None:
    """/metrics (Prometheus text format): requests per route template and status, latency
    histogram, and the lake's table facts read at scrape time."""
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        client.get("/predict/AAA")
    client.get("/predict/ZZZ")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(response.text) for s in f.samples}
    route = (("method", "GET"), ("route", "/predict/{ticker}"))
    assert samples[("ticklake_api_requests_total", (*route, ("status", "200")))] >= 3
    assert samples[("ticklake_api_requests_total", (*route, ("status", "404")))] >= 1
    assert samples[("ticklake_api_request_duration_seconds_count", route)] >= 4
    assert samples[("ticklake_table_rows", (("table", "gold.daily_metrics"),))] == len(PRICES)
    assert ("ticklake_broker_up", ()) in samples


def test_yahoo_symbols_are_served_and_named_in_errors(tmp_path) -> None:
    """A model registered under EURUSD=X serves at /predict/EURUSD=X; ^GSPC, sent encoded as
    %5EGSPC, is decoded and named in the 404."""
    from fastapi.testclient import TestClient

    from analytics.api import create_app

    write_daily_metrics(tmp_path, "EURUSD=X", PRICES)
    register_model(tmp_path, "EURUSD=X", "v1")
    assert Registry(tmp_path).consider("EURUSD=X", "v1", datetime.now(UTC))[0]
    with TestClient(create_app(Settings(lake_dir=tmp_path))) as client:
        body = client.get("/predict/EURUSD=X").json()
        assert (body["ticker"], body["model_version"]) == ("EURUSD=X", "v1")
        assert body["predicted_avg_price"] > 0
        missing = client.get(f"/predict/{quote('^GSPC')}")
        assert missing.status_code == 404 and "'^GSPC'" in missing.json()["detail"]


def test_get_predict_serves_the_stored_forecast_of_the_current_gold_day(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A row of gold/predictions for Gold's last day, the horizon and the serving version is
    served as stored (no model run); a row of an older day is not (the champion forecasts
    the current window); a new gold/predictions version is served at once."""
    from datetime import date

    import pyarrow as pa
    from fastapi.testclient import TestClient

    from analytics.api import create_app
    from config.tables import GOLD_PREDICTIONS
    from storage.sink import DeltaSink

    lake = tmp_path_factory.mktemp("api-stored")
    write_daily_metrics(lake, "AAA", PRICES)
    register_model(lake, "AAA", "v1")
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]

    def store(as_of: date, predicted: float, created: datetime) -> None:
        row = {"ticker": "AAA", "as_of": as_of, "target_date": date(2012, 1, 17),
               "predicted_avg_price": predicted, "lower_80": predicted - 1,
               "upper_80": predicted + 1, "naive_avg_price": PRICES[-1],
               "model_version": "v1", "created_at": created, "horizon": 1, "model": "lstm"}
        DeltaSink(GOLD_PREDICTIONS, lake, "test").upsert(
            pa.Table.from_pylist([row], schema=GOLD_PREDICTIONS.schema), None)

    store(date(2012, 1, 12), 99.0, datetime(2012, 1, 12, 23, tzinfo=UTC))  # an older day
    with TestClient(create_app(Settings(lake_dir=lake, api_refresh_s=0))) as client:
        computed = client.get("/predict/AAA").json()
        assert computed["as_of"] == "2012-01-13" and computed["predicted_avg_price"] != 99.0
        store(date(2012, 1, 13), 123.45, datetime(2012, 1, 13, 23, tzinfo=UTC))
        stored = client.get("/predict/AAA").json()
        assert stored["predicted_avg_price"] == 123.45 and stored["lower_80"] == 122.45
        assert stored["as_of"] == "2012-01-13" and stored["target_date"] == "2012-01-17"
        assert stored["model"] == "lstm" and stored["backtest_rmse"] == 1.0
        assert stored["backtest"] == computed["backtest"]
        store(date(2012, 1, 13), 124.0, datetime(2012, 1, 14, 1, tzinfo=UTC))  # upserted
        assert client.get("/predict/AAA").json()["predicted_avg_price"] == 124.0
        assert client.get("/predict/AAA").json() == client.get("/predict/AAA").json()


def test_table_versions_are_looked_up_at_most_every_refresh_interval(tmp_path) -> None:
    """A new Delta version is seen once refresh_s has passed on the clock, not before; a table
    that appears is picked up (-1: no table yet)."""
    import pyarrow as pa

    from analytics.served import Memo
    from config.tables import GOLD_PREDICTIONS
    from storage.delta import ensure_table, table_version
    from storage.sink import DeltaSink

    now = [0.0]
    path = str(GOLD_PREDICTIONS.path(tmp_path))
    versions = Memo(lambda _: (table_version(path),), refresh_s=0.5, clock=lambda: now[0])
    assert versions(None) == (-1,)
    ensure_table(GOLD_PREDICTIONS, tmp_path)
    assert versions(None) == (-1,)  # 0 s later: what it saw last
    now[0] = 0.5
    first = versions(None)[0]
    assert first >= 0
    DeltaSink(GOLD_PREDICTIONS, tmp_path, "test").append(
        pa.Table.from_pylist([], schema=GOLD_PREDICTIONS.schema), None)
    now[0] = 0.9
    assert versions(None) == (first,)
    now[0] = 1.0
    assert versions(None) == (first + 1,)
