"""Run every benchmark and rewrite bench/RESULTS.md.

    python bench/run.py [--quick] [--only NAME ...] [--out PATH] [--json PATH]
    python -m bench     (same options)

Discovers ``bench/bench_*.py`` modules; each exposes ``run(quick: bool) -> list[Result]``.
``--only engine`` runs ``bench_engine.py`` only (repeatable). ``--out`` writes the report
elsewhere (tests use it so that they never overwrite bench/RESULTS.md).
Every figure is a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (python bench/run.py): make the `bench` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, NODE_DIR, ROOT, Result, fmt_ratio, fmt_value


def discover() -> list[str]:
    return sorted(p.stem[len("bench_") :] for p in BENCH_DIR.glob("bench_*.py"))


def _cmd_output(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _node_pkg_version(name: str) -> str | None:
    try:
        return json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def machine_info() -> dict[str, str]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        import convex_notebook

        cn_version = getattr(convex_notebook, "__version__", "installed")
    except Exception as exc:  # noqa: BLE001 - report whatever stops the import
        cn_version = f"not importable ({type(exc).__name__})"
    git = _cmd_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT)
    dirty = _cmd_output(["git", "status", "--porcelain"], cwd=ROOT)
    return {
        "date (UTC)": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "nproc": _cmd_output(["nproc"]) or str(os.cpu_count()),
        "CPU": cpu or platform.processor() or "?",
        "memory": mem or "?",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "Node": _cmd_output(["node", "--version"]) or "not found",
        "convex (npm)": _node_pkg_version("convex") or "not installed",
        "convex-test (npm)": _node_pkg_version("convex-test") or "not installed",
        "convex_notebook": str(cn_version),
        "git": (git or "no commit yet") + (" (+ uncommitted changes)" if dirty else ""),
    }


def _met(m: bool | None) -> str:
    return "—" if m is None else ("**pass**" if m else "**FAIL**")


def render(results: dict[str, list[Result]], errors: dict[str, str], info: dict[str, str],
           quick: bool, elapsed: float) -> str:
    lines: list[str] = []
    lines.append("# Benchmark results")
    lines.append("")
    lines.append(
        "Written by `scripts/bench` (`python bench/run.py`); do not edit by hand. "
        "Every figure is compared with a baseline measured **in the same run**: "
        "ratio = figure / baseline. Timings are medians over repeats after warm-ups "
        "(`time.perf_counter`)."
    )
    if quick:
        lines.append("")
        lines.append("> **Quick mode** (`--quick`): small sizes for a smoke test; these figures are not the real ones.")
    lines.append("")
    lines.append("## Machine")
    lines.append("")
    lines.append("| | |")
    lines.append("|---|---|")
    for k, v in info.items():
        lines.append(f"| {k} | {v} |")
    lines.append(f"| total bench time | {elapsed:.0f} s |")
    lines.append("")
    all_results = [r for rs in results.values() for r in rs]
    goals = [r for r in all_results if r.met is not None]
    if goals:
        passed = sum(1 for r in goals if r.met)
        lines.append(f"**Goals met: {passed} of {len(goals)}.**")
        lines.append("")
    for mod, rs in results.items():
        groups: dict[str, list[Result]] = {}
        for r in rs:
            groups.setdefault(r.group or mod, []).append(r)
        for group, grs in groups.items():
            lines.append(f"## {group}")
            lines.append("")
            lines.append("| Figure | Value | Baseline | Baseline value | Ratio | Goal | Met |")
            lines.append("|---|---:|---|---:|---:|---|:---:|")
            for r in grs:
                lines.append(
                    f"| {r.name} | {fmt_value(r.value, r.unit)} | {r.baseline_name} | "
                    f"{fmt_value(r.baseline_value, r.unit)} | {fmt_ratio(r.ratio)} | "
                    f"{r.goal or '—'} | {_met(r.met)} |"
                )
            notes = [r for r in grs if r.note]
            if notes:
                lines.append("")
                for r in notes:
                    lines.append(f"- *{r.name}*: {r.note}")
            lines.append("")
    for mod, err in errors.items():
        lines.append(f"## {mod}: ERROR")
        lines.append("")
        lines.append("```")
        lines.append(err.rstrip())
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test); figures are not meaningful")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only bench_NAME.py (repeatable); available: " + ", ".join(discover()))
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "RESULTS.md", help="Markdown report (default bench/RESULTS.md)")
    ap.add_argument("--json", type=Path, default=None,
                    help="raw results as JSON (default: bench/out/results.json, or next to --out)")
    args = ap.parse_args(argv)

    names = discover()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; available: {names}")
        names = [n for n in names if n in args.only]

    out: Path = args.out.resolve()
    json_path: Path = args.json or (
        BENCH_DIR / "out" / "results.json" if out == (BENCH_DIR / "RESULTS.md").resolve() else out.with_suffix(".json")
    )

    t_start = time.perf_counter()
    results: dict[str, list[Result]] = {}
    errors: dict[str, str] = {}
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.bench_{name}")
            rs = list(mod.run(quick=args.quick))
            results[name] = rs
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start

    info = machine_info()
    text = render(results, errors, info, args.quick, elapsed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "machine": info,
        "quick": args.quick,
        "elapsed_s": elapsed,
        "results": {k: [r.to_dict() for r in v] for k, v in results.items()},
        "errors": errors,
    }, indent=2, default=str) + "\n")
    print(text)
    print(f"[bench] wrote {out} and {json_path}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
