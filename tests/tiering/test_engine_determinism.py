"""decide gives the same answer in every process, whatever the interpreter's hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Decides one dispatch-line ticket that carries two route labels and prints the route.
_SCRIPT = """
import json
from datetime import UTC, datetime
from pathlib import Path
from tiering import Ticket, decide, load_policy
path = Path("deploy/policies/dispatch-line.yaml")
policy = load_policy(path.read_text(), source=str(path))
ticket = Ticket(key="SUP-1", subject="s", description="d",
                labels=frozenset({"tier-route-billing", "tier-route-facilities", "x", "y"}))
d = decide(ticket, policy, now=datetime(2026, 11, 21, tzinfo=UTC))
print(json.dumps([d.route, sorted(d.labels_add), sorted(d.labels_remove)]))
"""


def test_two_route_labels_give_the_first_route_in_policy_order_in_every_process() -> None:
    """A ticket with two route labels keeps the route that comes first in the policy's rules,
    the same under every PYTHONHASHSEED (a set's iteration order is not a rule order)."""
    answers = set()
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True, timeout=60)
        answers.add(done.stdout.strip())
    assert len(answers) == 1, answers
    route = json.loads(answers.pop())[0]
    assert route == "facilities"  # its rule stands before billing's in dispatch-line.yaml
