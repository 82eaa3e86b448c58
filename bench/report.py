"""Markdown tables of one run, written to bench/results/ for docs/benchmarks.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["markdown", "write_markdown"]


def _late(r: dict[str, Any]) -> str:
    """Deliveries that missed their step's window but arrived (not lost)."""
    late = r.get("late_total")
    return f" ({_fmt(late)} late)" if late else ""


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _probe_line(machine: dict[str, Any]) -> list[str]:
    probe = machine.get("pg_commit_probe")
    if not probe:
        return []
    return [
        "",
        "PostgreSQL commit latency on this machine before the run (bench/pg_commit_probe.py, "
        f"{probe['commits']} single-row commits, "
        f"synchronous_commit={probe['synchronous_commit']}): "
        f"p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, p99.9 {probe['p999_ms']} ms, "
        f"max {probe['max_ms']} ms; {probe['over_100ms']} over 100 ms.",
    ]


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], quick: bool) -> str:
    lines = [
        f"Run: {machine['date']} ({'quick' if quick else 'full'}) on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['ram_gib']} GiB RAM, kernel {machine['kernel']}, "
        f"Python {machine['python']}; load average at start {machine['load_avg_at_start']}.",
        *_probe_line(machine),
        "",
        "| system | workload | max delivered msg/s (p99 ≤ 100 ms) | p50 ms | p99 ms "
        "| send→ack p99 ms | lost | server CPU µs/delivery (net of idle) "
        "| backend CPU µs/delivery | server CPU % | generator CPU % | stopped by |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    idle_rows = []
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['system']} | {r.get('workload', '-')} | error: {r['error']}" + " |" * 10
            )
            continue
        if r["workload"] == "idle":
            idle_rows.append(r)
            continue
        lines.append(
            f"| {r['system']} | {r['workload']} | {_fmt(r['max_delivered_per_s'], 0)} "
            f"| {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | {_fmt(r.get('ack_p99_ms'), 2)} "
            f"| {_fmt(r['lost_total'])}{_late(r)} "
            f"| {_fmt(r['server_cpu_us_per_delivery'])} "
            f"({_fmt(r.get('server_cpu_us_per_delivery_net'))}) "
            f"| {_fmt(r['backend_cpu_us_per_delivery'])} | {_fmt(r.get('server_cpu_pct'))} "
            f"| {_fmt(r['generator_cpu_pct'])} | {r['saturated_by'] or 'not reached'} |"
        )
    if idle_rows:
        lines += [
            "",
            "| system | idle connections open (failed) | connect time s "
            "| server RSS before → after (MiB) | KiB per connection |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for r in idle_rows:
            lines.append(
                f"| {r['system']} | {_fmt(r['connections'])} ({_fmt(r.get('failed_connections'))}) "
                f"| {_fmt(r['connect'].get('seconds'))} "
                f"| {r['rss_before_mib']} → {r['rss_after_mib']} "
                f"| {_fmt(r['kib_per_connection'])} |"
            )
    lines += _targets(results)
    return "\n".join(lines) + "\n"


def _targets(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked for each rtportal system and workload."""
    best = {
        (r["system"], r["workload"]): r
        for r in results
        if "error" not in r and r.get("workload") in ("rooms", "fanout")
    }
    idle = {r["system"]: r for r in results if "error" not in r and r.get("workload") == "idle"}
    out = [
        "",
        "| target | rooms | fanout |",
        "| --- | --- | --- |",
    ]
    systems = sorted({r["system"] for r in results if r["system"].startswith("rtportal-")})
    for system in systems:
        for other, factor in (("relay", 0.5), ("channels", 3.0)):
            cells = []
            for workload in ("rooms", "fanout"):
                mine, theirs = best.get((system, workload)), best.get((other, workload))
                if mine is None or theirs is None:
                    cells.append("-")
                    continue
                a, b = mine["max_delivered_per_s"], theirs["max_delivered_per_s"]
                if b:
                    ratio = a / b
                    verdict = "met" if ratio >= factor else "missed"
                    cells.append(f"{ratio:.2g}x ({a:,.0f} vs {b:,.0f}): {verdict}")
                elif a > 0:
                    cells.append(f"{a:,.0f} vs 0 ({other} passed no step): met")
                else:
                    cells.append("neither passed a step: n/a")
            out.append(f"| {system} ≥ {factor}× {other} | {cells[0]} | {cells[1]} |")
        lost = [best[(system, w)]["lost_total"] for w in ("rooms", "fanout") if (system, w) in best]
        out.append(
            f"| {system} 0 lost | {lost[0] if lost else '-'} "
            f"| {lost[1] if len(lost) > 1 else '-'} |"
        )
        if system in idle and idle[system].get("kib_per_connection") is not None:
            kib = idle[system]["kib_per_connection"]
            out.append(
                f"| {system} idle ≤ 20 KB/connection | {kib} KiB: "
                f"{'met' if kib * 1.024 <= 20 else 'missed'} | |"
            )
    return out


def write_markdown(
    results: list[dict[str, Any]], machine: dict[str, Any], quick: bool, directory: Path
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"results-{stamp}{'-quick' if quick else ''}.md"
    path.write_text(markdown(results, machine, quick))
    return path
