"""``vigil demo --streams``: a short replay finds its planted pumps and says how fast it alerted."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bot.runtime.demo_streams import StreamDemoOptions, run_stream_demo, summarize_stream_demo


@pytest.mark.slow
async def test_stream_demo_alerts_on_planted_pumps_with_faults(tmp_path: Path) -> None:
    options = StreamDemoOptions(
        directory=tmp_path / "demo", symbols=6, minutes=25, speed=60, seed=3, faults=True, pumps_per_hour=3.0
    )
    result = await run_stream_demo(options)
    assert len(result.pumps) >= 1 and result.pumps["found"].all()
    assert (result.events["seconds_to_send"].dropna() >= 0).all() and len(result.events) >= len(result.pumps)
    assert result.stats["disconnects"] >= 10 and result.stats["reconnects"] >= 10
    console = Console(record=True, width=120)
    summarize_stream_demo(result, console)
    text = console.export_text()
    assert "alerts against the planted pumps" in text and "seconds from the first abnormal chunk" in text
