"""`manage.py chatbench` end to end at a toy size: real daphne processes on
the real Redis layer, driven by the load generator in a process of its own.
Not a timed test: it checks that every workload runs and reports whole
figures, and that the seq checks found nothing lost or doubled."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REDIS_URL, ROOT

pytestmark = pytest.mark.redis


def test_chatbench_runs_every_workload_and_loses_nothing(tmp_path):
    """Every workload on the app, and those they take on GraphQL and the tutorial's chat."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings", "SECRET_KEY": "bench"}
    subprocess.run(
        [sys.executable, "manage.py", "chatbench", "--tiny", "--redis-url", REDIS_URL,
         "--server", "daphne,graphql,tutorial", "--json", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    report = json.loads(out.read_text())
    rows = {row["workload"]: row for row in report["results"]}
    assert {"fanout", "publish", "idle", "joinstorm", "sweep held"} <= set(rows)
    assert report["setup"]["layer"] == "redis" and report["machine"]["cores"] >= 1

    # --tiny: 2 rooms x 3 members, 60 deliveries/s offered for 1 s: each room's
    # sender sends 10, and each of the 3 members gets all 10.
    assert rows["fanout"]["deliveries"] == 2 * 10 * 3
    for name in ("fanout", "publish"):
        row = rows[name]
        assert (row["lost"], row["doubled"], row["unacked"], row["errors"]) == (0, 0, 0, 0), row
        assert row["p99_ms"] is not None and row["rss_kib"] > 0
    # Both members of a publishing room get every message of it, their own included.
    assert rows["publish"]["acked"] > 0
    assert rows["publish"]["deliveries"] == 2 * rows["publish"]["acked"]
    assert rows["idle"]["connections"] == 20 and rows["idle"]["kib_per_socket"] is not None
    assert rows["joinstorm"]["joins"] == 10 and rows["joinstorm"]["short_history"] == 0
    assert rows["sweep held"]["offered_per_s"] in (30, 60)
    # The same fan-out to GraphQL subscribers and to the Channels tutorial's chat.
    for name in ("fanout (graphql)", "fanout (tutorial)"):
        row = rows[name]
        assert row["deliveries"] == 2 * 10 * 3, row
        assert (row["lost"], row["doubled"], row["errors"]) == (0, 0, 0), row
    assert rows["graphql ratio"]["ratio"] is not None
    assert rows["held ratio"]["ratio"] is not None
