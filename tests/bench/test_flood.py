"""The flood bench's arithmetic (bench/flood_figures.py): what an archived flood says, and each line's lag."""
from collections import Counter

from bench import flood_figures as figures

NS = figures.NS


def flood(*numbers: int) -> list[str]:
    return [f"f {n} xxxx" for n in numbers]


def test_a_whole_flood_has_nothing_lost_or_repeated():
    found = figures.numbering(flood(1, 2, 3) + ["done 3"]).summary()
    assert (found["written"], found["archived"], found["lost"], found["duplicated"], found["numbering_breaks"],
            found["markers"]) == (3, 3, 0, 0, 0, 0)


def test_missing_and_repeated_numbers_and_markers_are_counted():
    texts = (flood(1, 2) + ["[tenx-gateway: about 1,234 lines lost here: the node deleted the files]"]
             + flood(5, 5, 6, 4) + ["[tenx-gateway: lines may be lost here: who knows]", "hello", "done 7"])
    found = figures.numbering(texts).summary()
    assert found["written"] == 7
    assert found["lost"] == 2  # 3 and 7
    assert found["duplicated"] == 1
    assert found["archived"] == 6 and found["distinct"] == 5
    assert found["numbering_breaks"] == 3  # 2 -> 5, 5 -> 5, 6 -> 4
    assert found["marker_counts"] == [1234, None]
    assert found["other_lines"] == 1
    assert found["unmarked_missing"] == 0
    assert found["gaps"] == [{"after": 2, "skipped": 2, "markers": [1234]}, {"after": 6, "skipped": 1, "markers": [None]}]


def test_a_repeat_is_kept_with_the_line_before_it():
    found = figures.numbering(["f 1 a", "f 2 bb", "f 2 b", "f 3 c", "done 3"]).summary()
    assert found["duplicated"] == 1 and found["lost"] == 0
    assert found["repeats"] == [{"number": 2, "line": "f 2 b", "after": "f 2 bb"}]


def test_numbers_skipped_where_no_marker_stood_are_lost_silently():
    texts = flood(1, 2, 6, 3) + ["[tenx-gateway: about 10 lines lost here: x]"] + flood(20) + ["done 22"]
    found = figures.numbering(texts).summary()
    assert found["lost"] == 2 + 13 + 2  # 4, 5; 7..19; 21, 22
    assert found["unmarked_missing"] == 2 + 2  # 3 came late; 21 and 22 at the end
    assert found["markers"] == 1


def test_a_count_from_elsewhere_finishes_a_flood_whose_done_line_is_missing():
    found = figures.numbering(flood(1, 2))
    found.finish(4)
    assert found.summary()["lost"] == 2 and found.unmarked_missing == 2


def test_without_its_done_line_a_flood_has_no_loss_figure():
    assert figures.numbering(flood(1, 2)).lost is None


def test_numbers_past_any_flood_are_not_taken_as_numbers():
    found = figures.numbering(["f 99999999999 x", "f 12abc x", "done 0"]).summary()
    assert found["archived"] == 0 and found["other_lines"] == 2


def test_each_line_lags_until_the_first_sample_that_saw_it_committed():
    lines = [(0, 10 * NS), (1, 10 * NS + NS // 2), (2, 11 * NS), (3, 12 * NS)]
    commits = [(10.2, 0), (10.6, 2), (11.5, 3)]  # line 3 never seen committed
    lags = figures.line_lags(lines, commits)
    assert lags == Counter({600: 1, 100: 1, 500: 1})
    assert figures.counted_quantiles(lags) == {"p50": 0.5, "p99": 0.6, "max": 0.6}


def test_quantiles_of_nothing_are_none():
    assert figures.counted_quantiles(Counter()) == {"p50": None, "p99": None, "max": None}
    assert figures.quantiles([]) == {"p50": None, "p99": None, "max": None}
    assert figures.quantiles([3.0, 1.0, 2.0]) == {"p50": 2.0, "p99": 3.0, "max": 3.0}


EXPOSITION = """# HELP x
tenx_collector_lag_seconds_bucket{le="0.5",region="us"} {a}
tenx_collector_lag_seconds_bucket{le="1.0",region="us"} {b}
tenx_collector_lag_seconds_bucket{le="+Inf",region="us"} {c}
tenx_gateway_kube_request_duration_seconds_count{resource="pods/log",verb="GET"} {d}
tenx_gateway_kube_request_duration_seconds_count{resource="pods",verb="LIST"} 7.0
"""


def exposition(a, b, c, d) -> str:
    return EXPOSITION.replace("{a}", str(a)).replace("{b}", str(b)).replace("{c}", str(c)).replace("{d}", str(d))


def test_a_histogram_growth_gives_the_bucket_bounds_of_its_quantiles():
    before = [exposition(10, 10, 10, 0)]
    assert figures.histogram_quantiles(before, [exposition(60, 109, 110, 0)], "tenx_collector_lag_seconds") == {
        "observations": 100, "p50_at_most": 0.5, "p99_at_most": 1.0}
    past = figures.histogram_quantiles(before, [exposition(60, 108, 110, 0)], "tenx_collector_lag_seconds")
    assert past["p99_at_most"] == float("inf")


def test_totals_sum_the_samples_with_the_labels_asked_for_over_expositions():
    texts = [exposition(0, 0, 0, 2), exposition(0, 0, 0, 3)]
    assert figures.total(texts, "tenx_gateway_kube_request_duration_seconds_count", resource="pods/log") == 5
    assert figures.total(texts, "tenx_gateway_kube_request_duration_seconds_count") == 19


def mode(lost: int, lag_p99: float) -> dict:
    return {"sample_interval_s": 0.2,
            "flood": {"written": 100, "written_per_second": 50, "archived": 100 - lost, "lost": lost,
                      "unmarked_missing": 0, "markers": 1 if lost else 0, "marker_lines_stated": lost,
                      "markers_unknown": 0, "duplicated": 0, "other": 0},
            "lag": {"p50": 0.3, "p99": lag_p99, "max": lag_p99}, "lag_histogram": {"p50_at_most": 0.5,
                                                                                  "p99_at_most": 3.0},
            "drain_seconds": 1.0, "neighbour": {"jobs": 4, "lag": {"p50": 0.4, "max": 0.9}, "not_archived": 0},
            "cpu": {"seconds": 2.0, "lines": 100, "waiting_for_a_cpu_s": 0.5, "load_1m": [1.0, 2.0],
                    "cores_per_1000_lines_per_s": 0.02},
            "rss": {"peak_mib": 80.0}, "pods_log": {"apiserver_all_clients": 3, "collectors": 0}}


def test_the_table_has_a_column_per_mode_and_a_dash_for_a_mode_that_failed():
    text = figures.table({"node": mode(0, 1.5), "apiserver": {"mode": "apiserver", "failure": "boom"}})
    assert text.splitlines()[0] == "| figure | node | apiserver |"
    assert "| lost: numbers missing (of which where no marker stood) | 0 (0) | - |" in text
    assert "| archive lag p50 / p99, collector's histogram (s, bucket bound) | ≤ 0.5 / ≤ 3 | - |" in text


def test_node_mode_targets_say_pass_or_miss():
    verdicts = {t["target"]: t["verdict"] for t in figures.targets(mode(3, 2.5))}
    assert verdicts["0 lines lost"] == "MISS" and verdicts["archive lag p99 <= 2 s (per line)"] == "MISS"
    assert verdicts["0 duplicated"] == "PASS" and verdicts["<= 0.05 core per 1,000 lines/s"] == "PASS"
    assert figures.targets({"mode": "node", "failure": "boom"}) == []


def test_the_floods_figures_add_up_over_their_containers():
    def container(texts: list[str], first: int, done: int | None) -> dict:
        return {**figures.numbering(texts).summary(), "first_stamp_ns": first, "done_stamp_ns": done}

    whole = container(flood(1, 2, 3) + ["done 3"], 10 * NS, 12 * NS)
    short = container(flood(1, 1, 3) + ["[tenx-gateway: about 1 lines lost here: x]", "done 4"], 11 * NS, 14 * NS)
    totals = figures.flood_totals([whole, short])
    assert (totals["written"], totals["written_per_second"], totals["lost"], totals["duplicated"]) == (7, 2, 2, 1)
    assert (totals["markers"], totals["marker_lines_stated"], totals["unmarked_missing"]) == (1, 1, 1)
    unknown = figures.flood_totals([whole, container(flood(1), 11 * NS, None)])
    assert unknown["written"] is None and unknown["lost"] is None and unknown["written_per_second"] is None
