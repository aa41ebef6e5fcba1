"""``divergence``: one venue breaking away from the other venues of the same asset.

Input: a venue's candles with its group's peers as ``close@<peer>``/``volume@<peer>``
columns (:mod:`detectors.groups`). A frame without peers gets no score (NaN).

The score of venue ``v`` at bar ``t`` (all in log prices, every step causal):

1. **basis**: the venue's usual premium ``b_v`` over the group, the median of
   ``log p_v - median_u log p_u`` over the previous ``window`` bars. It absorbs a
   persistent USD/USDT basis or a venue that always trades a little rich;
2. **deviation**: basis-corrected prices ``p_v - b_v``, their median across venues is the
   group's robust centre ``c_t``, and ``d_v = p_v - b_v - c_t``. With three or more
   venues the median ignores the one that broke away, so only that venue deviates;
3. **scale**: the venue's own recent spread volatility, the interquartile range of its
   ``d`` over the previous ``window`` bars / 1.349 (floored at ``min_scale``), widened
   by ``move_weight * |c_t - c_{t-1}|``: in a fast move every venue's last trade lags a
   little, which is noise, not a dislocation;
4. **volume share**: ``log`` of the venue's share of the group's volume, standardised the
   same way (median and IQR of the previous ``window`` bars);

``score = sqrt(z_price^2 + (volume_weight * z_volume)^2)`` where ``z_price = d / scale``.

All groups and venues are computed in one vectorised pass: every group of a batch is
stacked into ``(rows, groups, venues)`` arrays (groups of different sizes padded with
NaN venues; the members of a group share one stack) and the rolling statistics run once
over all columns. Nothing is learned
but the threshold (any policy of :mod:`detectors.thresholds`; the default is a static
value on the z scale, chosen on synthetic tuning seeds and real tuning symbols, see
``docs/venues.md``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from core.config import ThresholdConfig
from core.errors import DetectorError
from detectors.base import METADATA_FILE, Detector, as_frames
from detectors.groups import peer_venues, stack_group
from detectors.thresholds import ThresholdPolicy, make_threshold, threshold_from_dict

__all__ = ["DivergenceDetector", "divergence_scores"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
_IQR_TO_SD = 1.349


_CHUNK_ROWS = 2048  # windows sorted at a time: bounds memory on long series


def _rolling(x: np.ndarray, window: int, what: str, start: int = 0) -> np.ndarray:
    """Rolling statistic over the previous ``window`` rows (the current row excluded), per column.

    ``x`` is (rows, columns); ``what`` is ``median`` or ``iqr`` (75th minus 25th percentile,
    linear interpolation). Windows may miss up to half their rows (gaps); NaN until then.
    Rows before ``start`` are left NaN (not computed): a batch only needs its last rows.
    Vectorised over every column at once: the windows are sorted (NaN last) and the
    quantiles read at their interpolated positions, chunk by chunk over the rows.
    """
    rows, cols = x.shape
    out = np.full((rows, cols), np.nan)
    min_periods = max(4, window // 2)
    # columns first, so each window is a contiguous run of memory: row t sees rows t-window .. t-1
    padded = np.ascontiguousarray(np.concatenate([np.full((window, cols), np.nan), x[:-1]], axis=0).T)
    views = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)  # (cols, rows, window)
    qs = (0.5,) if what == "median" else (0.25, 0.75)
    out = out.T  # (cols, rows) view: filled chunk by chunk below
    for lo in range(max(0, start), rows, _CHUNK_ROWS):
        chunk = np.sort(views[:, lo : lo + _CHUNK_ROWS], axis=-1)  # NaN sort last
        count = np.isfinite(chunk).sum(axis=-1)
        values = []
        for q in qs:
            pos = q * np.maximum(count - 1, 0)
            below = np.floor(pos).astype(np.intp)
            above = np.minimum(below + 1, np.maximum(count - 1, 0))
            frac = pos - below
            a = np.take_along_axis(chunk, below[..., None], axis=-1)[..., 0]
            b = np.take_along_axis(chunk, above[..., None], axis=-1)[..., 0]
            values.append(a + (b - a) * frac)
        stat = values[0] if what == "median" else values[1] - values[0]
        out[:, lo : lo + _CHUNK_ROWS] = np.where(count >= min_periods, stat, np.nan)
    return out.T


def _nanmedian(x: np.ndarray, axis: int, min_count: int) -> np.ndarray:
    """Median over ``axis`` ignoring NaN, NaN where fewer than ``min_count`` values exist."""
    count = np.isfinite(x).sum(axis=axis)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(x, axis=axis)
    return np.where(count >= min_count, med, np.nan)


def _recent_move(centre: np.ndarray, bars: int) -> np.ndarray:
    """Root mean square of the group centre's moves over the last ``bars`` bars (this one included).

    How fast the asset itself is moving right now: the lag of a venue's last trade turns
    that speed into spread, so the scale widens with it. NaN moves (a bar the group could
    not price) count as zero.
    """
    step = np.diff(centre, axis=0, prepend=np.nan)
    sq = np.where(np.isfinite(step), step**2, 0.0)
    csum = np.cumsum(sq, axis=0)
    lagged = np.concatenate([np.zeros((bars,) + csum.shape[1:]), csum[:-bars]], axis=0) if bars < len(csum) else 0.0
    return np.sqrt((csum - lagged) / bars)


def divergence_scores(
    closes: np.ndarray,
    volumes: np.ndarray,
    *,
    window: int = 96,
    min_venues: int = 3,
    volume_weight: float = 0.3,
    move_weight: float = 0.15,
    move_bars: int = 3,
    min_scale: float = 1e-4,
    first_row: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every venue of every stacked group.

    Parameters
    ----------
    closes, volumes : (rows, groups, venues), NaN where a venue has no bar (or is padding).
    first_row : rows before it get no score (only what they feed into later rows is computed).

    Returns
    -------
    (score, z_price), both (rows, groups, venues); NaN where not computable (warm-up, too
    few venues at that bar, the venue missing).
    """
    t, g, v = closes.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.log(np.where(closes > 0, closes, np.nan))
    flat = (t, g * v)
    raw_centre = _nanmedian(p, axis=2, min_count=min_venues)
    basis = _rolling((p - raw_centre[..., None]).reshape(flat), window, "median", first_row - window).reshape(t, g, v)
    adjusted = p - basis
    centre = _nanmedian(adjusted, axis=2, min_count=min_venues)
    dev = adjusted - centre[..., None]
    spread_sd = _rolling(dev.reshape(flat), window, "iqr", first_row).reshape(t, g, v) / _IQR_TO_SD
    move = _recent_move(centre, move_bars)
    scale = np.sqrt(np.maximum(spread_sd, min_scale) ** 2 + (move_weight * move)[..., None] ** 2)
    z_price = dev / scale

    with np.errstate(divide="ignore", invalid="ignore"):
        vol = np.where(np.isfinite(volumes) & (volumes >= 0), volumes, np.nan)
        total = np.nansum(vol, axis=2, keepdims=True)
        share = np.log(np.clip(vol / np.where(total > 0, total, np.nan), 1e-4, None))
    share_mid = _rolling(share.reshape(flat), window, "median", first_row).reshape(t, g, v)
    share_sd = np.maximum(_rolling(share.reshape(flat), window, "iqr", first_row).reshape(t, g, v) / _IQR_TO_SD, 0.05)
    z_volume = np.clip((share - share_mid) / share_sd, -20, 20)
    z_volume = np.where(np.isfinite(z_volume), z_volume, 0.0)  # a missing volume share says nothing

    score = np.sqrt(z_price**2 + (volume_weight * z_volume) ** 2)
    score[~np.isfinite(z_price)] = np.nan
    return score, z_price


class DivergenceDetector(Detector):
    """Cross-venue divergence of one venue from its asset group (see the module docstring).

    Parameters
    ----------
    window : int
        Bars of history for the basis, the spread volatility and the volume share (default 96).
    min_venues : int
        Venues with a bar needed to score it (default 3: with two, no one can say which broke away).
    volume_weight, move_weight, min_scale : float
        Weight of the volume-share term; widening of the scale by the group's own move;
        floor of the spread scale (log units).
    threshold : ThresholdConfig or dict, optional
        Any policy of :mod:`detectors.thresholds`; default ``default_threshold``.
    """

    name: ClassVar[str] = "divergence"
    requires_training: ClassVar[bool] = False
    event_kind: ClassVar[str] = "divergence"
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "static", "value": 10.0}

    def __init__(
        self,
        *,
        window: int = 96,
        min_venues: int = 3,
        volume_weight: float = 0.3,
        move_weight: float = 0.15,
        move_bars: int = 3,
        min_scale: float = 1e-4,
        threshold: ThresholdConfig | dict[str, Any] | None = None,
    ) -> None:
        if int(window) < 8:
            raise DetectorError(f"divergence: window must be at least 8 bars, got {window}")
        if int(min_venues) < 2:
            raise DetectorError(f"divergence: min_venues must be at least 2, got {min_venues}")
        if isinstance(threshold, ThresholdConfig):
            threshold = threshold.model_dump(exclude_none=True)
        self.params: dict[str, Any] = {
            "window": int(window),
            "min_venues": int(min_venues),
            "volume_weight": float(volume_weight),
            "move_weight": float(move_weight),
            "move_bars": int(move_bars),
            "min_scale": float(min_scale),
            "threshold": dict(threshold or self.default_threshold),
        }
        self.threshold_: ThresholdPolicy = make_threshold(self.params["threshold"])
        self.fitted_ = self.threshold_.fitted_

    @property
    def warmup(self) -> int:
        """Rows before the first score: a full window for the basis, another for the spread scale."""
        return 2 * int(self.params["window"]) + 1

    def _options(self) -> dict[str, Any]:
        keys = ("window", "min_venues", "volume_weight", "move_weight", "move_bars", "min_scale")
        return {k: self.params[k] for k in keys}

    # ---------------------------------------------------------------- scoring
    def _score_frames(self, frames: list[pd.DataFrame], tail: int | None) -> list[np.ndarray]:
        """Own-venue scores of every frame (its last ``tail`` rows), all in one vectorised pass."""
        if not frames:
            return []
        width = max(1 + len(peer_venues(f)) for f in frames)
        n = min(len(f) for f in frames) if tail is None else tail
        same_length = tail is not None or len({len(f) for f in frames}) == 1
        if not same_length:  # full-length scoring of frames of different lengths: one at a time
            return [self._score_frames([f], None)[0] for f in frames]
        closes, volumes = zip(*(stack_group(f, tail=n, width=width) for f in frames), strict=True)
        score, _ = divergence_scores(np.stack(closes, axis=1), np.stack(volumes, axis=1), **self._options())
        out = []
        for j, f in enumerate(frames):
            own = score[:, j, 0].copy()
            if not peer_venues(f):
                own[:] = np.nan
            out.append(own)
        return out

    def _score_groups(self, frames: Mapping[str, pd.DataFrame], tail: int, last_n: int) -> dict[str, np.ndarray]:
        """Like :meth:`_score_frames`, but the venues of one group share one computation.

        Every member of a group carries the same closes (its own and its peers'); when the
        members' last ``tail`` bars are the same bars, the group is computed once and each
        member reads its own venue's column. Members whose bars differ (a venue missed a
        bar) are computed on their own rows, as :meth:`score` would.
        """
        units: dict[tuple[str, ...], list[str]] = {}
        singles: list[str] = []
        for key, f in frames.items():
            peers = peer_venues(f)
            if not peers:
                singles.append(key)
                continue
            units.setdefault(tuple(sorted([key, *peers])), []).append(key)
        reps: list[str] = []
        share: dict[str, tuple[str, int]] = {}  # member -> (representative, venue position in its stack)
        for members in units.values():
            first = frames[members[0]].index[-tail:]
            same = [m for m in members if frames[m].index[-tail:].equals(first)]
            rep = same[0]
            order = [rep, *peer_venues(frames[rep])]
            reps.append(rep)
            for m in same:
                share[m] = (rep, order.index(m))
            for m in members:
                if m not in share:
                    reps.append(m)
                    share[m] = (m, 0)
        width = max((1 + len(peer_venues(frames[r])) for r in reps), default=1)
        out: dict[str, np.ndarray] = {k: np.full(tail, np.nan) for k in singles}
        if reps:
            closes, volumes = zip(*(stack_group(frames[r], tail=tail, width=width) for r in reps), strict=True)
            score, _ = divergence_scores(
                np.stack(closes, axis=1), np.stack(volumes, axis=1), first_row=tail - last_n, **self._options()
            )
            column = {r: j for j, r in enumerate(reps)}
            for member, (rep, pos) in share.items():
                out[member] = score[:, column[rep], pos].copy()
        return out

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Divergence score of the frame's own venue per row; NaN during warm-up or without peers."""
        self._check_input(frame, "divergence input")
        scores = self._score_frames([frame], None)[0]
        scores[: self.warmup] = np.nan
        return pd.Series(scores, index=frame.index, name="score")

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """The last ``last_n`` scores of every frame; every group in one pass (needs ``warmup + last_n`` rows)."""
        if not frames:
            return {}
        need = self.warmup + last_n
        for key, f in frames.items():
            self._check_input(f, f"divergence input for {key}")
            if len(f) < need:
                raise DetectorError(f"divergence input for {key}: needs at least {need} rows, got {len(f)}")
        outs = self._score_groups(frames, need, last_n)
        return {key: pd.Series(outs[key][-last_n:], index=f.index[-last_n:], name="score") for key, f in frames.items()}

    @staticmethod
    def _check_input(frame: pd.DataFrame, what: str) -> None:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise DetectorError(f"{what}: index must be a DatetimeIndex, got {type(frame.index).__name__}")
        missing = [c for c in ("close", "volume") if c not in frame.columns]
        if missing:
            raise DetectorError(f"{what}: missing column(s) {', '.join(missing)}")
        if not frame.index.is_monotonic_increasing:
            raise DetectorError(f"{what}: index must be sorted by time")

    # ------------------------------------------------------------- threshold
    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        """Nothing to learn but the threshold: fitted on the training scores unless it is static."""
        data = as_frames(frames)
        grouped = {k: f for k, f in data.items() if peer_venues(f)}
        if self.threshold_.policy != "static":
            scores = [self.score(f).to_numpy() for f in grouped.values()]
            finite = np.concatenate(scores) if scores else np.empty(0)
            if not np.isfinite(finite).any():
                raise DetectorError(
                    f"divergence: no scores to fit the {self.threshold_.policy!r} threshold on "
                    f"(needs frames with peer columns and more than {self.warmup} rows)"
                )
            self.threshold_.fit(finite)
        self.fitted_ = True
        log.info("divergence: ready on %d venue series (%d with peers)", len(data), len(grouped))
        return self

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.thresholds(scores)

    def alarm_values(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.transform(scores)

    @property
    def suppress_rows(self) -> int:
        """The policy's incident suppression (``threshold = {..., suppress = N}``), as for every detector."""
        return int(getattr(self.threshold_, "suppress", 0))

    # --------------------------------------------------------------- storage
    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "detector": self.name,
            "params": self.params,
            "threshold": self.threshold_.to_dict(),
        }
        (path / METADATA_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        path = Path(directory) / METADATA_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DetectorError(f"no saved detector in {path.parent} ({METADATA_FILE} not found)") from None
        except json.JSONDecodeError as err:
            raise DetectorError(f"{path}: invalid JSON: {err}") from None
        if meta.get("detector") != cls.name:
            raise DetectorError(f"{path}: holds a {meta.get('detector')!r} model, not {cls.name!r}")
        det = cls(**meta["params"])
        det.threshold_ = threshold_from_dict(meta["threshold"])
        det.fitted_ = True
        return det

    def __repr__(self) -> str:
        return f"DivergenceDetector({', '.join(f'{k}={v!r}' for k, v in self._options().items())})"
