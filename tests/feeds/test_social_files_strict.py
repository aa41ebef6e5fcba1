"""Issue 17 (parsers): a social CSV goes through the strict reader; a bad value is named, not turned into NaN."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import SocialSourceConfig
from core.errors import DataSourceError
from feeds.social import build_social_sources

T0 = 1_704_067_200_000
H = 3_600_000


def _source(path: Path, **options: str) -> object:
    [src] = build_social_sources([SocialSourceConfig(name="files", kind="csv", options={"path": str(path), **options})])
    return src


async def test_bad_value_is_named_by_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT.csv"
    path.write_text(f"timestamp_ms,social_volume\n{T0},5\n{T0 + H},abc\n")
    with pytest.raises(DataSourceError) as info:
        await _source(path).fetch("BTC/USDT", T0, T0 + 2 * H)  # type: ignore[attr-defined]
    assert f"{path}:3: column 'social_volume': expected a number, got 'abc'" in str(info.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"timestamp_ms,social_volume\n1704067200000,5\xe9\n", "not UTF-8 text"),
        (b"timestamp_ms,social_volume,social_volume\n1704067200000,5,6\n", "more than once"),
        (b"timestamp_ms,social_volume\n1704067200000,5,7\n", "row has 3 fields"),
        (b"timestamp_ms,social_volume\n99999999999999999999,5\n", "out of range"),
    ],
)
async def test_malformed_file_is_one_line(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "BTC_USDT.csv"
    path.write_bytes(content)
    with pytest.raises(DataSourceError) as info:
        await _source(path).fetch("BTC/USDT", T0, T0 + 2 * H)  # type: ignore[attr-defined]
    assert says in str(info.value) and "\n" not in str(info.value)


async def test_capitalised_headers_and_options_still_match(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(f"Time,Coin,Mentions\n{T0},BTC,5\n{T0},ETH,9\n{T0 + H},BTC,\n")
    src = _source(path, time_column="Time", symbol_column="Coin", value_column="Mentions")
    got = await src.fetch("BTC/USDT", T0, T0 + 2 * H)  # type: ignore[attr-defined]
    assert got.iloc[0] == 5.0 and len(got) == 2  # the blank is a missing value, kept as NaN
