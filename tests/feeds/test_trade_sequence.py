"""SequenceTrack: trades back in id order, each once, and a watermark that never runs ahead of a hole."""

from __future__ import annotations

import numpy as np

from feeds.trade_sequence import SequenceTrack


def _trades(ids: list[int]) -> tuple[np.ndarray, ...]:
    a = np.asarray(ids, dtype=np.int64)
    return a, a * 10, a.astype(float), np.ones(len(a)), a % 2 == 0


def test_swapped_and_repeated_messages_come_out_once_in_order() -> None:
    track = SequenceTrack("X")
    out = track.add(*_trades([5, 6, 8, 7, 7, 6, 9]))
    assert out is not None and out.ids.tolist() == [5, 6, 7, 8, 9]
    assert track.duplicates == 2 and track.out_of_order == 1
    assert track.watermark == 90 and track.missing() is None


def test_a_hole_holds_back_later_trades_and_the_watermark() -> None:
    track = SequenceTrack("X")
    track.add(*_trades([1, 2, 3]))
    assert track.add(*_trades([6, 7])) is None
    assert track.missing() == (4, 5) and track.held == 2 and track.gaps_seen == 1
    assert track.watermark == 30  # trade 6 at 60 is held: nothing after the hole counts as complete
    track.covered(10_000)  # a REST answer cannot vouch for later times while a hole is open
    assert track.watermark == 30
    filled = track.add(*_trades([4, 5, 5]))
    assert filled is not None and filled.ids.tolist() == [4, 5, 6, 7]
    assert track.watermark == 70 and track.missing() is None


def test_rest_coverage_moves_the_watermark_of_a_quiet_symbol() -> None:
    track = SequenceTrack("X")
    track.start_at(last_id=100, last_ts=1_000, watermark=2_000)
    assert track.add(*_trades([99, 100])) is None  # older than the starting point
    assert track.duplicates == 2
    track.covered(5_000)
    assert track.watermark == 5_000


def test_held_trades_are_bounded_when_a_hole_is_never_filled() -> None:
    track = SequenceTrack("X", max_held=10)
    track.add(*_trades([1]))
    out = track.add(*_trades(list(range(3, 20))))  # id 2 never comes
    assert track.given_up == 1 and out is not None and out.ids[0] == 3 and track.held == 0


def test_a_socket_message_before_the_starting_point_is_held_until_rest_says_where_to_start() -> None:
    track = SequenceTrack("X", wait_for_start=True)
    assert track.add(*_trades([10, 11])) is None  # the socket answered before REST
    assert track.start_at(last_id=8, last_ts=80, watermark=80) is None  # REST: the stream starts at 9
    out = track.add(*_trades([9, 10]))  # REST brings 9 (and 10 again)
    assert out is not None and out.ids.tolist() == [9, 10, 11]  # in order, each once


def test_a_waiting_track_that_rest_gives_no_start_begins_at_its_lowest_held_id() -> None:
    track = SequenceTrack("X", wait_for_start=True)
    assert track.add(*_trades([12, 11])) is None
    out = track.begin()
    assert out is not None and out.ids.tolist() == [11, 12]
