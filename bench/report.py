"""The table, the targets with PASS/MISS, and bench/results/latest.json."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def _row(results: list[dict], case: str) -> dict | None:
    return next((r for r in results if r["case"] == case), None)


def _largest_list(results: list[dict]) -> dict | None:
    lists = [r for r in results if r["case"].startswith("list ") and r["concurrency"] == 1]
    return max(lists, key=lambda r: int(r["case"].split()[1])) if lists else None


_OPS = {"<=": lambda v, lim: v <= lim, "<": lambda v, lim: v < lim, ">=": lambda v, lim: v >= lim}


def _target(name: str, row: dict | None, measure: Callable[[dict], float | None], limit: float, unit: str,
            note: str = "", op: str = "<=") -> dict[str, Any]:
    value = measure(row) if row else None
    verdict = "n/a" if value is None else ("PASS" if _OPS[op](value, limit) else "MISS")
    return {"target": name, "case": row["case"] if row else None, "value": value, "op": op, "limit": limit,
            "unit": unit, "verdict": verdict, "note": note}


def targets(results: list[dict], worker_peak_mb: float | None, quick: bool) -> list[dict[str, Any]]:
    get, delete, create = _row(results, "get"), _row(results, "delete"), _row(results, "create")
    big = _largest_list(results)
    big_note = "" if big and big["case"] == "list 10000" else "stand-in: 10,000 jobs not run in QUICK mode"
    logs_note = "" if not quick else "stand-in: a 10,000-line log in QUICK mode"
    c16 = [r for r in results if r["concurrency"] > 1]
    found = [
        _target("get: gateway p50 - direct p50 <= 3 ms", get, lambda r: r["delta_p50_ms"], 3, "ms"),
        _target("get: gateway p99 - direct p99 <= 10 ms", get, lambda r: r["delta_p99_ms"], 10, "ms"),
        _target("delete: gateway p50 - direct p50 <= 3 ms", delete, lambda r: r["delta_p50_ms"], 3, "ms"),
        _target("delete: gateway p99 - direct p99 <= 10 ms", delete, lambda r: r["delta_p99_ms"], 10, "ms"),
        _target("create: gateway p50 - direct p50 <= 5 ms", create, lambda r: r["delta_p50_ms"], 5, "ms"),
        _target("list at 10,000 jobs: gateway p50 <= 1.2x direct", big, lambda r: r["ratio_p50"], 1.2, "x",
                big_note),
        _target("logs from=0 (100 lines): gateway p50 < 5% of whole-log read", _row(results, "logs from 0"),
                lambda r: r["ratio_p50"], 0.05, "x", logs_note, "<"),
        _target("logs last 100 lines: gateway p50 <= 1.1x whole-log read", _row(results, "logs last 100"),
                lambda r: r["ratio_p50"], 1.1, "x", logs_note),
        _target("archived log from=0 (100 lines): gateway p50 < 5% of whole-log read",
                _row(results, "archived from 0"), lambda r: r["ratio_p50"], 0.05, "x", logs_note, "<"),
        _target("archived log last 100 lines: gateway p50 <= 1.1x whole-log read",
                _row(results, "archived last 100"), lambda r: r["ratio_p50"], 1.1, "x", logs_note),
    ]
    for row in c16:
        found.append(_target(f"{row['case']}: gateway req/s >= 0.8x direct", row, lambda r: r["throughput_ratio"],
                             0.8, "x", "", ">="))
    peak_row = {"case": "all", "peak": worker_peak_mb}
    found.append(_target("peak RSS per gateway worker <= 120 MB", peak_row, lambda r: r["peak"], 120, "MB",
                         "VmHWM of each worker at the end of the run"))
    return found


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: list[dict]) -> str:
    head = ["case", "scale", "clients", "gw p50", "gw p99", "direct p50", "direct p99", "Δp50 ms", "Δp99 ms",
            "ratio p50", "gw req/s", "direct req/s", "worker RSS MB"]
    rows = []
    for r in results:
        g, d = r["gateway"], r["direct"]
        rows.append([r["case"], r["scale"], str(r["concurrency"]), _fmt(g["p50_ms"], 2), _fmt(g["p99_ms"], 2),
                     _fmt(d["p50_ms"], 2), _fmt(d["p99_ms"], 2), _fmt(r["delta_p50_ms"], 2),
                     _fmt(r["delta_p99_ms"], 2), _fmt(r["ratio_p50"], 3), _fmt(g["throughput_rps"]),
                     _fmt(d["throughput_rps"]), _fmt(r["gateway_worker_peak_rss_mb"])])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("")
    lines.append("Latencies in ms; ratio = gateway / direct; req/s = completed calls / wall time of that side.")
    lines.append("Direct equivalents:")
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        grouped.setdefault((r["operation"], r["direct_equivalent"]), []).append(r["case"])
    for (operation, direct), names in grouped.items():
        lines.append(f"- {', '.join(names)}: gateway `{operation}` vs direct `{direct}`")
    checks = [f"{r['case']}: {r['check']}" for r in results if r.get("check")]
    if checks:
        lines.append("Answers compared once per case (untimed): " + "; ".join(checks))
    errors = [r for r in results if r["gateway"]["errors"] or r["direct"]["errors"]]
    for r in errors:
        lines.append(f"- ERRORS in {r['case']}: gateway {r['gateway']['errors']} "
                     f"({r['gateway']['first_error']}), direct {r['direct']['errors']} ({r['direct']['first_error']})")
    return "\n".join(lines)


def targets_table(found: list[dict]) -> str:
    lines = ["| target | case | measured | limit | verdict |", "|---|---|---|---|---|"]
    for t in found:
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"| {t['target']}{note} | {t['case'] or '-'} | {_fmt(t['value'], 3)} {t['unit']} | "
                     f"{t['op']} {t['limit']:g} {t['unit']} | {t['verdict']} |")
    return "\n".join(lines)


def write(out_dir: Path, document: dict[str, Any], text: str, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps(document, indent=2, default=str)
    latest = out_dir / "latest.json"
    latest.write_text(body)
    mode = "quick" if document["meta"]["quick"] else "full"
    (out_dir / f"{mode}-{stamp}.json").write_text(body)
    (out_dir / "latest.md").write_text(text)
    (out_dir / f"{mode}-{stamp}.md").write_text(text)
    return latest
