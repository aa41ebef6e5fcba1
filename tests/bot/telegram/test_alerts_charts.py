"""Pure parts: alert text, callback data, chart PNGs, input parsing."""

from __future__ import annotations

import struct
from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
import pytest

from bot.alerts.charts import render_alert_chart
from bot.alerts.text import alert_metrics, compose_alert, decode_callback, encode_callback, html_to_text
from bot.inputs import parse_count, parse_duration, parse_symbol, parse_threshold_value, split_args
from core.errors import InputError
from tests.bot.telegram.helpers import candles

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bar_ms(frame: pd.DataFrame, i: int) -> int:
    return int(frame.index[i].value // 1_000_000)


def test_compose_alert_lists_every_detector_with_context() -> None:
    frame = candles(48, spike_at=40)
    alert = NS(exchange="binance", symbol="BTC/USDT", timeframe="1h", bar_ts=_bar_ms(frame, 40), severity="high")
    events = [
        NS(detector="zscore", score=5.0, threshold=4.0, kind="anomaly"),
        NS(detector="pump_dump", score=12.0, threshold=4.0, kind="pump"),
    ]
    text = compose_alert(alert, events, frame)
    lines = text.split("\n")
    assert lines[0] == "🔴 <b>BTC/USDT</b> · binance · 1h — <b>HIGH</b>"
    assert lines[1] == "bar 2024-01-02 16:00 UTC"
    assert lines[2].startswith("price +") and "volume ×" in lines[2]
    assert lines[3] == "• pump_dump [pump]: score 12 / threshold 4 (×3.0)"  # strongest first
    assert lines[4] == "• zscore: score 5 / threshold 4 (×1.2)"


def test_compose_alert_escapes_html_from_data() -> None:
    alert = NS(exchange="<x>", symbol="A&B/USDT", timeframe="1h", bar_ts=0, severity="low")
    text = compose_alert(alert, [NS(detector="<script>", score=1.0, threshold=0.0, kind="anomaly")])
    assert "<script>" not in text and "&lt;script&gt;" in text and "A&amp;B/USDT" in text
    assert "<script>" in html_to_text(text)


def test_alert_metrics_use_only_bars_up_to_the_alert() -> None:
    frame = candles(48, spike_at=40)
    m = alert_metrics(frame, _bar_ms(frame, 40))
    later = frame.copy()
    later.iloc[41:, :] = later.iloc[41:, :] * 50  # the future must not matter
    assert alert_metrics(later, _bar_ms(frame, 40)) == m
    assert m.volume_multiple > 5 and m.price_change > 0.05
    assert np.isnan(alert_metrics(frame, 123).close)  # bar not in the frame


def test_callback_data_round_trips_and_rejects_everything_else() -> None:
    data = encode_callback("m", 42)
    assert data == "v1:m:42" and len(data.encode()) <= 64
    assert decode_callback(data) == ("m", 42)
    for bad in ("v2:m:42", "v1:m:-1", "v1:m:0", "v1:z:1", "v1:m:1:2", None, 42, "v1:m:" + "1" * 70):
        assert decode_callback(bad) is None


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_render_alert_chart_is_a_sensible_png() -> None:
    frame = candles(120, spike_at=100)
    frame["social_volume"] = np.linspace(5, 50, 120)
    events = pd.DataFrame({"timestamp": [frame.index[100]], "detector": ["zscore"], "score": [9.0], "threshold": [4.0]})
    png = render_alert_chart(frame, events=events, title="binance:BTC/USDT 1h")
    width, height = _png_size(png)
    assert width == 1000 and 500 <= height <= 900
    assert 20_000 < len(png) < 400_000
    scores = pd.Series(np.abs(np.random.default_rng(0).normal(size=120)), index=frame.index)
    png2 = render_alert_chart(frame, scores=scores, threshold=2.5)
    assert _png_size(png2)[0] == 1000 and png2 != png


def test_render_alert_chart_refuses_an_empty_frame() -> None:
    with pytest.raises(ValueError, match="no candles"):
        render_alert_chart(candles(10).iloc[:0])


def test_inputs_accept_good_values_and_name_bad_ones() -> None:
    assert parse_symbol("btc-usdt") == "BTC/USDT"
    assert parse_symbol("BTC/USDT:USDT") == "BTC/USDT:USDT"
    assert parse_duration("90m").total_seconds() == 5400
    assert parse_threshold_value("3.5") == 3.5 and parse_count("7") == 7
    assert split_args("/watch@vigil_bot BTC/USDT 1h") == ["BTC/USDT", "1h"]
    for fn, raw, msg in [
        (parse_symbol, "BTC/USDT; DROP TABLE", "bad symbol"),
        (parse_symbol, "<b>x</b>", "bad symbol"),
        (parse_duration, "5y", "bad duration"),
        (parse_threshold_value, "inf", "out of range"),
        (parse_threshold_value, "1e9", "out of range"),
        (parse_count, "0", "out of range"),
    ]:
        with pytest.raises(InputError, match=msg):
            fn(raw)
    with pytest.raises(InputError, match="too many arguments"):
        split_args("/x a b c d e f g")


def test_redacting_filter_hides_the_token_in_messages_and_tracebacks() -> None:
    import io
    import logging

    from bot.runtime.logs import RedactingFilter

    stream = io.StringIO()
    logger = logging.getLogger("vigil.test.redact")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["123456:SECRET-token"]))
    logger.addHandler(handler)
    logger.warning("url %s", "https://api.telegram.org/bot123456:SECRET-token/getMe")
    try:
        raise RuntimeError("failed: /bot123456:SECRET-token/sendPhoto")
    except RuntimeError:
        logger.exception("boom")
    text = stream.getvalue()
    assert "SECRET-token" not in text, text
    assert text.count("***") >= 2 and "RuntimeError: failed: /bot***/sendPhoto" in text
