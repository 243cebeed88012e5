"""How fast `drs task list` / `drs task show` start, against a bare Python that imports json and sqlite3.

Makes a DRS home with `--tasks` tasks (store API, encrypted-file secrets), then times each command as a
new process (`python -m engine.cli ...`, the wall time of the subprocess) `--runs` times and reports the
median, and the budget of 10 x the bare interpreter. With `--importtime`, the slowest imports of each
command (`python -X importtime`, cumulative microseconds) are listed too.

    .venv/bin/python bench/cli_bench.py [--tasks 50] [--runs 15] [--importtime] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from report import replace_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MARK_START = "<!-- cli:start (written by bench/cli_bench.py; replaced when it runs again) -->"
MARK_END = "<!-- cli:end -->"
BASELINE = ["-c", "import json, sqlite3"]


def commands(name: str) -> list[tuple[str, list[str]]]:
    return [
        ("drs task list", ["-m", "engine.cli", "task", "list"]),
        ("drs task list --json", ["-m", "engine.cli", "task", "list", "--json"]),
        ("drs task show NAME", ["-m", "engine.cli", "task", "show", name]),
        ("drs task show NAME --json", ["-m", "engine.cli", "task", "show", name, "--json"]),
    ]


def wall_time(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr}")
    return elapsed


def slowest_imports(args: list[str], env: dict[str, str], top: int = 5) -> list[tuple[str, int]]:
    result = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, cwd=ROOT, capture_output=True,
                            text=True)  # fmt: skip
    found = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # nested imports are indented more
            found.append((name.strip(), int(cumulative)))
    # top-level imports only (not indented), biggest cumulative first
    return sorted(found, key=lambda item: -item[1])[:top]


def make_home(home: Path, count: int) -> str:
    from gui_bench import make_tasks

    from engine.tasks import TaskService

    svc = TaskService(home)
    make_tasks(svc, count)
    name = svc.store.list_tasks()[0].name
    svc.close()
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports of each command")
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()
    command = "`.venv/bin/python bench/cli_bench.py " + " ".join(sys.argv[1:]) + "`"
    os.environ["DRS_SECRET_BACKEND"] = "file"
    home = Path(tempfile.mkdtemp(prefix="drs-cli-bench-"))
    try:
        name = make_home(home, args.tasks)
        env = {**os.environ, "DRS_HOME": str(home), "PYTHONPATH": str(ROOT)}
        rows = []
        baseline = statistics.median(wall_time(BASELINE, env) for _ in range(args.runs))
        budget = 10 * baseline
        auto_env = {**env, "DRS_SECRET_BACKEND": "auto"}
        for label, cmd in [*commands(name), ("drs task show NAME (secret backend auto: asks the keyring)",
                                             commands(name)[2][1])]:  # fmt: skip
            run_env = auto_env if "auto" in label else env
            times = [wall_time(cmd, run_env) for _ in range(args.runs)]
            imports = slowest_imports(cmd, run_env) if args.importtime else []
            rows.append((label, statistics.median(times), min(times), max(times), imports))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load = os.getloadavg()
    lines = [
        MARK_START,
        "## CLI start-up: `drs task list` / `drs task show` (bench/cli_bench.py)",
        "",
        f"Run {datetime.now():%Y-%m-%d %H:%M}: {command} — {args.tasks} tasks, each command a new process "
        f"{args.runs} times (subprocess wall time), secrets in the encrypted file; load average {load[0]:.1f}.",
        f'Baseline `python -c "import json, sqlite3"`: median {baseline * 1000:.0f} ms; budget 10x = '
        f"{budget * 1000:.0f} ms.",
        "",
        "| command | median | min | max | within 10x |",
        "|---|---|---|---|---|",
    ]
    for label, median, low, high, _ in rows:
        ok = "yes" if median <= budget else "**no**"
        lines.append(
            f"| `{label}` | {median * 1000:.0f} ms | {low * 1000:.0f} ms | {high * 1000:.0f} ms | {ok} |"
        )
    if args.importtime:
        lines += ["", "Slowest top-level imports (`python -X importtime`, cumulative):", ""]
        for label, *_, imports in rows:
            shown = ", ".join(f"{module} {us / 1000:.0f} ms" for module, us in imports)
            lines.append(f"- `{label}`: {shown}")
    lines += ["", MARK_END]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.out:
        write_report_between(args.out, section)
    return 0


def write_report_between(path: Path, section: str) -> None:
    replace_section(path, section, MARK_START, MARK_END)


if __name__ == "__main__":
    sys.exit(main())
