"""The flood case's arithmetic, pure: what a container's archived lines say (written, archived, lost, duplicated,
the lost-lines markers), the lag of each line from sampled commit counts, quantiles, Prometheus text, the table."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

NS = 1_000_000_000
GAPS_KEPT = 20
MAX_NUMBER = 100_000_000  # a flood's numbers stay far below (~25,000 lines/s a container here); more is garbage
_MARKER = re.compile(r"^\[tenx-gateway: (?:about (?P<count>[\d,]+) lines lost here|lines may be lost here)")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.MULTILINE)


@dataclass
class Numbering:
    """One flood container's archive, read in order: lines ``f <n> ...`` numbered from 1 by the job itself, its
    last line ``done <n>`` (how many it wrote), and the collector's lost-lines markers."""
    written: int | None = None  # the job's own last number, from its "done" line (None: not archived)
    archived: int = 0  # numbered lines in the archive, repeats included
    distinct: int = 0
    duplicated: int = 0  # archived lines whose number was archived before
    breaks: int = 0  # lines whose number is not the previous one's + 1 (gaps, repeats, reordering)
    markers: list[int | None] = field(default_factory=list)  # each marker's stated count (None: unknown)
    other: int = 0  # lines that are neither numbered, "done", nor a marker (a line broken in two, ...)
    gaps: list[dict[str, Any]] = field(default_factory=list)  # the first GAPS_KEPT skips: where, how many, marker
    repeats: list[dict[str, Any]] = field(default_factory=list)  # the first GAPS_KEPT repeats, with the line before
    _seen: bytearray = field(default_factory=bytearray, repr=False)
    _last: int = 0
    _previous: str = field(default="", repr=False)
    _marker: list[int | None] = field(default_factory=list, repr=False)  # markers since the last numbered line
    _unmarked: list[tuple[int, int]] = field(default_factory=list, repr=False)  # skipped ranges with no marker

    def add(self, text: str) -> None:
        try:
            self._add(text)
        finally:
            self._previous = text

    def _add(self, text: str) -> None:
        kind, _, rest = text.partition(" ")
        token = rest.partition(" ")[0]
        number = int(token) if kind == "f" and token.isdigit() else 0
        if 0 < number <= MAX_NUMBER:
            self.archived += 1
            if number >= len(self._seen):
                self._seen.extend(bytes(max(number + 1 - len(self._seen), len(self._seen))))
            if self._seen[number]:
                self.duplicated += 1
                if len(self.repeats) < GAPS_KEPT:
                    self.repeats.append({"number": number, "line": text[:120], "after": self._previous[:120]})
            else:
                self._seen[number] = 1
                self.distinct += 1
            if number != self._last + 1:
                self.breaks += 1
            if number > self._last + 1:
                self._skip(number)
            self._last = max(self._last, number)
            self._marker = []
        elif kind == "done" and rest.isdigit():
            self.finish(int(rest))
        elif (marker := _MARKER.match(text)) is not None:
            count = marker.group("count")
            self.markers.append(int(count.replace(",", "")) if count else None)
            self._marker.append(self.markers[-1])
        else:
            self.other += 1

    def finish(self, written: int) -> None:
        """The job's own count (its "done" line, or its pod's log where the archive lacks that line)."""
        self.written = written
        if written > self._last:
            self._skip(written + 1)

    def _skip(self, number: int) -> None:
        """The numbers after the highest so far, up to ``number`` excluded, are skipped here."""
        if not self._marker:
            self._unmarked.append((self._last + 1, number))
        if len(self.gaps) < GAPS_KEPT:
            self.gaps.append({"after": self._last, "skipped": number - self._last - 1, "markers": list(self._marker)})

    @property
    def unmarked_missing(self) -> int:
        """Numbers missing from the archive in the skips where no marker stood: lines lost silently."""
        return sum(end - start - sum(self._seen[start:end]) for start, end in self._unmarked)

    @property
    def lost(self) -> int | None:
        """Numbers 1..written missing from the archive (None while the job's last number is unknown)."""
        if self.written is None:
            return None
        return self.written - sum(self._seen[1:self.written + 1])

    def summary(self) -> dict[str, Any]:
        return {"written": self.written, "archived": self.archived, "distinct": self.distinct, "lost": self.lost,
                "duplicated": self.duplicated, "numbering_breaks": self.breaks, "markers": len(self.markers),
                "marker_counts": self.markers, "unmarked_missing": self.unmarked_missing, "gaps": self.gaps,
                "repeats": self.repeats,
                "other_lines": self.other}


def numbering(texts: Iterable[str]) -> Numbering:
    found = Numbering()
    for text in texts:
        found.add(text)
    return found


def flood_totals(containers: list[dict[str, Any]]) -> dict[str, Any]:
    """The floods' figures summed over their containers (each a ``read_flood`` summary, with the runtime stamps of
    its first numbered line and its "done" line); written and lost are None unless every count is known."""
    written = [c["written"] for c in containers]
    known = all(w is not None for w in written)
    firsts, ends = [c["first_stamp_ns"] for c in containers], [c["done_stamp_ns"] for c in containers]
    span = (max(ends) - min(firsts)) / NS if all(firsts) and all(ends) and containers else None
    markers = [count for c in containers for count in c["marker_counts"]]
    return {
        "containers": containers, "written": sum(written) if known else None,
        "written_per_second": round(sum(written) / span) if known and span else None,
        "archived": sum(c["archived"] for c in containers),
        "lost": sum(c["lost"] for c in containers) if known else None,
        "duplicated": sum(c["duplicated"] for c in containers),
        "numbering_breaks": sum(c["numbering_breaks"] for c in containers),
        "unmarked_missing": sum(c["unmarked_missing"] for c in containers),
        "other": sum(c["other_lines"] for c in containers),
        "markers": len(markers), "marker_lines_stated": sum(m for m in markers if m),
        "markers_unknown": sum(1 for m in markers if m is None),
    }


def line_lags(lines: Iterable[tuple[int, int]], commits: Sequence[tuple[float, int]],
              counts: Counter | None = None) -> Counter:
    """The archive lag of lines given as (seq, stamp in ns), in seq order, counted by whole milliseconds (rounded
    up): from the line's stamp (the runtime's) to the first sample that saw it committed. ``commits`` are (clock
    time, the stream's next line number then), in time order. A line no sample saw committed counts nowhere; the
    rest are upper bounds, by at most the sampling interval."""
    counts = counts if counts is not None else Counter()
    index, seen_upto, at = 0, 0, 0.0
    for seq, stamp in lines:
        while seq >= seen_upto and index < len(commits):
            at, seen_upto = commits[index]
            index += 1
        if seq >= seen_upto:
            break
        counts[max(0, math.ceil((at - stamp / NS) * 1000))] += 1
    return counts


def counted_quantiles(counts: Counter, qs: Sequence[int] = (50, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles and the maximum, in seconds, of values counted by whole milliseconds."""
    total, found = sum(counts.values()), {}
    ordered = sorted(counts.items())
    for q in qs:
        rank, running, value = -(-total * q // 100), 0, None
        for ms, n in ordered:
            running += n
            if running >= rank:
                value = ms / 1000
                break
        found[f"p{q}"] = value if total else None
    found["max"] = ordered[-1][0] / 1000 if ordered else None
    return found


def quantiles(values: Sequence[float], qs: Sequence[int] = (50, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles (``p50``, ``p99``, ...) and the maximum; None of each for no values."""
    ordered = sorted(values)
    found: dict[str, float | None] = {}
    for q in qs:
        found[f"p{q}"] = round(ordered[max(0, -(-len(ordered) * q // 100) - 1)], 3) if ordered else None
    found["max"] = round(ordered[-1], 3) if ordered else None
    return found


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` in a Prometheus text exposition, with their labels."""
    return [(dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or "")), float(m["value"]))
            for m in _SAMPLE.finditer(text) if m["name"] == name]


def total(texts: Iterable[str], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``, over several expositions."""
    return sum(value for text in texts for found, value in samples(text, name)
               if all(found.get(k) == v for k, v in labels.items()))


def histogram_quantiles(before: Iterable[str], after: Iterable[str], name: str,
                        qs: Sequence[int] = (50, 99)) -> dict[str, Any]:
    """p50/p99 of a histogram's growth between scrapes (summed over expositions), as the upper bound of the
    bucket that holds them (``inf`` past the last bound)."""
    def buckets(texts: Iterable[str]) -> dict[float, float]:
        found: dict[float, float] = {}
        for text in texts:
            for labels, value in samples(text, f"{name}_bucket"):
                le = float(labels["le"])
                found[le] = found.get(le, 0.0) + value
        return found

    grown_before, grown_after = buckets(before), buckets(after)
    grown = sorted((le, value - grown_before.get(le, 0.0)) for le, value in grown_after.items())
    count = grown[-1][1] if grown else 0.0
    result: dict[str, Any] = {"observations": int(count)}
    for q in qs:
        result[f"p{q}_at_most"] = next((le for le, n in grown if count and n >= count * q / 100), None)
    return result


# -- the table -----------------------------------------------------------------------------------------------

def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{round(value):,}" if isinstance(value, (int, float)) else str(value)


def _pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{_n(a, digits)} / {_n(b, digits)}"


def _bound(value: float | None) -> str:
    return "-" if value is None else f"≤ {value:g}"


def table(modes: dict[str, dict[str, Any]]) -> str:
    """The Markdown table: a row per figure, a column per mode."""
    names = list(modes)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(modes[name]) if modes[name].get("flood") else "-" for name in names]))

    row("lines written (3 containers, their own last numbers)", lambda m: _n(m["flood"]["written"]))
    row("written per second, all 3 (while they printed)", lambda m: _n(m["flood"]["written_per_second"]))
    row("archived (numbered lines, repeats included)", lambda m: _n(m["flood"]["archived"]))
    row("lost: numbers missing (of which where no marker stood)",
        lambda m: f"{_n(m['flood']['lost'])} ({_n(m['flood']['unmarked_missing'])})")
    row("lost-lines markers (lines they state)", lambda m: f"{m['flood']['markers']} "
        f"({_n(m['flood']['marker_lines_stated'])}{', some of unknown size' if m['flood']['markers_unknown'] else ''})")
    row("duplicated", lambda m: _n(m["flood"]["duplicated"]))
    row("other lines (neither numbered, done nor a marker: lines broken apart)", lambda m: _n(m["flood"]["other"]))
    row("archive lag p50 / p99 / max, per line (s, sampled every "
        f"{next(iter(modes.values())).get('sample_interval_s', '?')} s)",
        lambda m: f"{_pair(m['lag']['p50'], m['lag']['p99'])} / {_n(m['lag']['max'], 2)}")
    row("archive lag p50 / p99, collector's histogram (s, bucket bound)",
        lambda m: f"{_bound(m['lag_histogram']['p50_at_most'])} / {_bound(m['lag_histogram']['p99_at_most'])}")
    row("last flood line archived, after the floods ended (s)", lambda m: _n(m["drain_seconds"], 1))
    row("neighbour: jobs; lag p50 / max from its last line (s)",
        lambda m: f"{m['neighbour']['jobs']}; {_pair(m['neighbour']['lag']['p50'], m['neighbour']['lag']['max'])}"
        + (f"; {m['neighbour']['not_archived']} not archived" if m["neighbour"]["not_archived"] else ""))
    row("collector CPU (s) / lines archived meanwhile", lambda m: f"{_n(m['cpu']['seconds'], 1)} / "
        f"{_n(m['cpu']['lines'])}")
    row("collector threads runnable but waiting for a CPU (s); machine load (1 min) before → after",
        lambda m: f"{_n(m['cpu']['waiting_for_a_cpu_s'], 1)}; {_n(m['cpu']['load_1m'][0], 1)} → "
        f"{_n(m['cpu']['load_1m'][1], 1)}")
    row("collector cores per 1,000 lines/s (= CPU s per 1,000 lines)",
        lambda m: _n(m["cpu"]["cores_per_1000_lines_per_s"], 4))
    row("collector peak RSS (MiB, largest collector)", lambda m: _n(m["rss"]["peak_mib"], 1))
    row("pods/log requests: the apiserver's count (all clients) / the collectors' own",
        lambda m: f"{_n(m['pods_log']['apiserver_all_clients'])} / {_n(m['pods_log']['collectors'])}")
    lines = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def targets(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 23's targets for node mode, PASS/MISS (n/a where the figure is missing)."""
    if not node or not node.get("flood"):
        return []
    flood, neighbour = node["flood"], node["neighbour"]
    found = [("0 lines lost", flood["lost"], 0),
             ("0 lost-lines markers", flood["markers"], 0),
             ("0 duplicated", flood["duplicated"], 0),
             ("archive lag p99 <= 2 s (per line)", node["lag"]["p99"], 2),
             ("every neighbour job readable <= 2 s after its last line",
              None if neighbour["not_archived"] else neighbour["lag"]["max"], 2),
             ("<= 0.05 core per 1,000 lines/s", node["cpu"]["cores_per_1000_lines_per_s"], 0.05),
             ("0 pods/log requests by the collectors", node["pods_log"]["collectors"], 0)]
    return [{"target": name, "value": value, "limit": limit,
             "verdict": "n/a" if value is None else ("PASS" if value <= limit else "MISS")}
            for name, value, limit in found]


def targets_table(found: list[dict[str, Any]]) -> str:
    lines = ["| node-mode target (issue 23) | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t['target']} | {_n(t['value'], 3) if isinstance(t['value'], float) else _n(t['value'])} | "
              f"{t['verdict']} |" for t in found]
    return "\n".join(lines)
