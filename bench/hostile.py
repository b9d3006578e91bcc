"""Hostile input, measured: the figures issue 14 asks for (tests pin the behaviour, this prints
the costs; nothing here asserts on time).

    .venv/bin/python bench/hostile.py

1. regexes: the slowest of the test suite's pathological patterns (tests/tiering/
   test_hostile_policy.py EXPONENTIAL) on 64 KB of hostile text, matched by the engine (RE2);
   goal under 10 ms.
2. YAML bombs: `tierdesk policy check` on billion laughs, deep nesting and a 64 MB file, wall
   time and peak memory of the child; goal under 2 s and 200 MB each.
3. the same files saved over the policy of a running `tierdesk serve`, reloaded on SIGHUP:
   time until "policy reload refused" and the growth of the server's peak resident memory.
4. 500 unfinished 1 MiB headers against `tierdesk serve`: the server's resident memory added
   while the attack runs; goal under 50 MB.

Everything runs on 127.0.0.1 with bounded loops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tiering.test_hostile_policy import BOMB, EXPONENTIAL  # noqa: E402
from tiering import Ticket, load_policy  # noqa: E402
from tiering.engine import first_matching_rule  # noqa: E402
from webhooks.defaults import default_policy_text  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bench_regexes() -> None:
    import yaml

    text = "a" * (64 * 1024 - 1) + "!"
    worst = ("", 0.0)
    for pattern in EXPONENTIAL:
        data = yaml.safe_load(default_policy_text())
        data["rules"].insert(0, {"name": "hostile", "when": {"text_regex": pattern},
                                 "tier": "L2"})
        policy = load_policy(yaml.safe_dump(data))
        ticket = Ticket(key="T-1", description=text)
        runs = []
        for _ in range(20):
            start = time.perf_counter()
            first_matching_rule(policy, ticket, None)
            runs.append(time.perf_counter() - start)
        best = min(runs)
        print(f"regex {pattern!r:22} on 64 KB: {best * 1000:.2f} ms (best of 20)")
        if best > worst[1]:
            worst = (pattern, best)
    print(f"regex worst case: {worst[0]!r} {worst[1] * 1000:.2f} ms (goal < 10 ms)")


def _bombs(folder: Path) -> dict[str, Path]:
    files = {
        "billion laughs (aliases)": BOMB,
        "deep nesting (100,000 [)": "version: 1\nx: " + "[" * 100_000 + "]" * 100_000 + "\n",
    }
    out = {}
    for name, text in files.items():
        path = folder / (name.split()[0] + ".yaml")
        path.write_text(text, encoding="utf-8")
        out[name] = path
    huge = folder / "huge.yaml"
    with huge.open("wb") as handle:
        handle.write(b"version: 1\n# ")
        handle.write(b"x" * (64 * 1024 * 1024))
    out["64 MB file"] = huge
    return out


def bench_policy_check(bombs: dict[str, Path]) -> None:
    for name, path in bombs.items():
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from webhooks.cli import main; main()", "policy", "check",
             str(path)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
        first = err.splitlines()[0] if err else ""
        print(f"policy check, {name}: exit {os.waitstatus_to_exitcode(status)}, {seconds:.2f} s,"
              f" peak {usage.ru_maxrss / 1024:.0f} MB: {first[:110]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _serve(folder: Path, policy: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    log = folder / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    env.update({"TIERDESK_DATABASE_URL": f"sqlite:///{folder / f'inbox-{port}.db'}",
                "TIERDESK_POLICY": str(policy), "TIERDESK_PORT": str(port),
                "TIERDESK_JIRA_WEBHOOK_SECRET": "bench", "PYTHONPATH": str(REPO)})
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from webhooks.cli import main; main()", "serve",
             "--no-worker"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port, log
        except OSError:
            time.sleep(0.1)
    raise SystemExit("serve did not start: " + log.read_text()[-2000:])


def bench_reload(folder: Path, bombs: dict[str, Path]) -> None:
    policy = folder / "policy.yaml"
    policy.write_text(default_policy_text(), encoding="utf-8")
    proc, _, log = _serve(folder, policy)
    try:
        for name, path in bombs.items():
            refusals = log.read_text().count("policy reload refused")
            before = _memory(proc.pid, "VmHWM")
            start = time.perf_counter()
            policy.write_bytes(path.read_bytes())
            proc.send_signal(signal.SIGHUP)
            for _ in range(600):  # at most 60 s
                if log.read_text().count("policy reload refused") > refusals:
                    break
                time.sleep(0.1)
            seconds = time.perf_counter() - start
            grew = _memory(proc.pid, "VmHWM") - before
            print(f"serve reload, {name}: refused after {seconds:.2f} s (includes writing the"
                  f" file), peak resident memory +{grew:.0f} MB, now"
                  f" {_memory(proc.pid, 'VmRSS'):.0f} MB")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def bench_headers(folder: Path) -> None:
    policy = folder / "policy-headers.yaml"
    policy.write_text(default_policy_text(), encoding="utf-8")
    proc, port, _ = _serve(folder, policy)
    socks: list[socket.socket] = []
    try:
        base = _memory(proc.pid, "VmRSS")
        peak = base
        chunk = b"a" * 65536
        for _ in range(500):  # 500 connections, each starting a 1 MiB header
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            with contextlib.suppress(OSError):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            socks.append(s)
        for _ in range(16):  # 16 x 64 KiB = 1 MiB per connection, as far as the server reads
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(chunk)
            peak = max(peak, _memory(proc.pid, "VmRSS"))
        peak = max(peak, _memory(proc.pid, "VmRSS"))
        print(f"500 unfinished 1 MiB headers: server resident memory {base:.0f} MB before,"
              f" at most {peak:.0f} MB during: +{peak - base:.0f} MB (goal < 50 MB)")
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    bench_regexes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bombs = _bombs(folder)
        bench_policy_check(bombs)
        bench_reload(folder, bombs)
        bench_headers(folder)


if __name__ == "__main__":
    main()
