"""Markdown tables of one run, written to bench/results/ for docs/benchmarks.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["markdown", "write_markdown"]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], quick: bool) -> str:
    lines = [
        f"Run: {machine['date']} ({'quick' if quick else 'full'}) on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['ram_gib']} GiB RAM, kernel {machine['kernel']}, "
        f"Python {machine['python']}; load average at start {machine['load_avg_at_start']}.",
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
            f"| {_fmt(r['lost_total'])} "
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
    return "\n".join(lines) + "\n"


def write_markdown(
    results: list[dict[str, Any]], machine: dict[str, Any], quick: bool, directory: Path
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"results-{stamp}{'-quick' if quick else ''}.md"
    path.write_text(markdown(results, machine, quick))
    return path
