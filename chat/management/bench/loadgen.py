"""The load generator of `manage.py chatbench`: drives running servers over
real WebSockets and prints what it measured as one JSON object.

It runs in a process of its own (pinned to its own core by chatbench), so
the server's costs and the generator's do not share a CPU. Each workload is
a module of this package; `core` is what they share.

    python -m chat.management.bench.loadgen '{"workload": "fanout", "urls": [...], ...}'
"""

import asyncio
import json
import sys

from chat.management.bench import bigroom, fanout, idle, joinstorm, publish
from chat.management.bench.core import Run, open_files_max

WORKLOADS = {
    "fanout": fanout.fanout,
    "publish": publish.publish,
    "idle": idle.idle,
    "joinstorm": joinstorm.joinstorm,
    "latency": idle.latency,
    "bigroom": bigroom.bigroom,
    "overload": fanout.overload,
}


async def main(spec: dict) -> dict:
    run = Run(spec)
    report = await WORKLOADS[spec["workload"]](run)
    report["errors"] = len(run.errors)
    if run.generator_cpu is not None:
        report["generator_cpu"] = run.generator_cpu
    if run.errors:
        report["first_error"] = run.errors[0]
    await asyncio.gather(*(c.ws.close() for c in run.clients), return_exceptions=True)
    return report


if __name__ == "__main__":
    open_files_max()
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
