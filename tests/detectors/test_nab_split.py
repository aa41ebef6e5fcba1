"""The NAB tuning/held-out split is fixed by file names alone and stratified by folder."""

from __future__ import annotations

import json

import pytest

from detectors.nab_split import HELDOUT, TUNING, nab_split

# The held-out half of the 41 files in ../shared/data/nab, pinned: the split must never move.
PINNED_HELDOUT = {
    "artificialNoAnomaly/art_daily_small_noise.csv",
    "artificialNoAnomaly/art_noisy.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "artificialWithAnomaly/art_daily_nojump.csv",
    "artificialWithAnomaly/art_load_balancer_spikes.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv",
    "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
    "realAWSCloudwatch/ec2_network_in_5abac7.csv",
    "realAWSCloudwatch/elb_request_count_8c0756.csv",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    "realAdExchange/exchange-3_cpc_results.csv",
    "realAdExchange/exchange-3_cpm_results.csv",
    "realAdExchange/exchange-4_cpm_results.csv",
    "realTraffic/TravelTime_387.csv",
    "realTraffic/occupancy_6005.csv",
    "realTraffic/speed_t4013.csv",
}


def test_split_halves_every_folder() -> None:
    keys = [f"a/{i}.csv" for i in range(7)] + [f"b/{i}.csv" for i in range(4)] + ["c/only.csv"]
    split = nab_split(keys)
    for folder, n in (("a", 7), ("b", 4), ("c", 1)):
        halves = [split[k] for k in keys if k.startswith(folder + "/")]
        assert halves.count(TUNING) == (n + 1) // 2
        assert halves.count(HELDOUT) == n // 2


def test_split_ignores_key_order_and_repeats() -> None:
    keys = [f"x/{i}.csv" for i in range(10)]
    assert nab_split(keys) == nab_split(list(reversed(keys)) + keys[:3])


def test_split_of_the_shared_corpus_is_pinned(shared_data) -> None:
    windows = shared_data / "nab" / "labels" / "combined_windows.json"
    if not windows.is_file():
        pytest.skip(f"NAB labels not found at {windows}")
    split = nab_split(json.loads(windows.read_text()))
    assert {k for k, v in split.items() if v == HELDOUT} == PINNED_HELDOUT
    assert sum(v == TUNING for v in split.values()) == 22
