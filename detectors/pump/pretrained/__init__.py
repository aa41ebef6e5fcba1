"""The small pump models shipped with vigil, so a first start needs no training.

``candles-1h/`` (the candle-grain CNN-LSTM for hourly bars) and ``chunks-15s/`` (the chunk-grain
model the trade-stream job scores every 15 s chunk with), each a ``model.keras`` and
``pump_dump.json`` as :meth:`detectors.pump.detector.PumpDumpDetector.save` writes them. Each
``pump_dump.json`` records under ``extra.recipe`` the seeded command that made it
(``vigil pumpdump pretrain``, see ``bot/pretrain.py``) and under ``extra.budget`` the alert-budget
calibration its threshold comes from.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRETRAINED_ROOT", "pretrained_dir"]

PRETRAINED_ROOT = Path(__file__).resolve().parent


def pretrained_dir(grain: str, timeframe: str | None = None, root: Path = PRETRAINED_ROOT) -> Path | None:
    """The shipped model folder for ``grain`` (``"candles"`` needs ``timeframe``), None if none ships."""
    if grain == "candles":
        if timeframe is None:
            return None
        name = f"candles-{timeframe}"
    elif grain == "chunks":
        name = "chunks-15s"
    else:
        raise ValueError(f"unknown grain {grain!r}: expected 'candles' or 'chunks'")
    folder = root / name
    return folder if (folder / "pump_dump.json").is_file() and (folder / "model.keras").is_file() else None
