"""pytest-xdist workers on several hosts: each worker's place among the workers of its own host.

xdist numbers workers across every gateway (``gw0`` ... ``gwN``), so a worker's number says
nothing about the machine it runs on: with ``--tx 2*socket=a:8888 --tx 2*socket=b:8888`` host b
runs ``gw2`` and ``gw3``, and by number alone they would take its third and fourth GPU and split
its cores four ways. The controller knows every gateway's spec; it tells each worker its slot
among the workers of the same host (``workerinput``), and the worker exports it as
``LLMEVAL_HOST_SLOT`` / ``LLMEVAL_HOST_WORKERS`` before any model loads, which GPU pinning and
CPU thread limits read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

SLOT_ENV = "LLMEVAL_HOST_SLOT"
WORKERS_ENV = "LLMEVAL_HOST_WORKERS"
WORKERINPUT_KEY = "llmeval_host"


def host_key(spec: Any) -> str:
    """Which machine a gateway spec runs on: the ssh target, the socket's host, the proxy it goes
    ``via``, or this machine for ``popen``."""
    if getattr(spec, "via", None):
        return f"via:{spec.via}"
    if getattr(spec, "ssh", None):
        return f"ssh:{str(spec.ssh).rsplit('@', 1)[-1]}"
    if getattr(spec, "socket", None):
        return f"socket:{str(spec.socket).rsplit(':', 1)[0]}"
    return "local"


def host_slot(specs: Sequence[Any], spec: Any) -> dict[str, Any]:
    """``spec``'s slot among the specs of its host, and how many workers that host runs."""
    key = host_key(spec)
    same = [s for s in specs if host_key(s) == key]
    slot = next((i for i, s in enumerate(same) if s is spec), None)
    if slot is None:  # a spec object not among the manager's (xdist replaced it): match by id
        slot = next((i for i, s in enumerate(same) if getattr(s, "id", None) == getattr(spec, "id", None)), 0)
    return {"host": key, "slot": slot, "workers": len(same)}


def configure_node(node: Any) -> None:
    """Controller side (``pytest_configure_node``): hand the worker its host slot."""
    spec = node.gateway.spec
    specs = list(getattr(node.nodemanager, "specs", None) or [spec])
    node.workerinput[WORKERINPUT_KEY] = host_slot(specs, spec)


def export_host_slot(config: Any) -> None:
    """Worker side, first thing in ``pytest_configure``: the slot as environment variables."""
    slot = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY)
    if isinstance(slot, dict):
        os.environ[SLOT_ENV] = str(slot["slot"])
        os.environ[WORKERS_ENV] = str(slot["workers"])


def local_slot(worker: str | None) -> int | None:
    """This worker's slot on its host: the exported one, else its xdist number (all workers local)."""
    exported = os.environ.get(SLOT_ENV)
    if exported is not None and exported.isdigit():
        return int(exported)
    if worker and worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:])
    return None


def local_workers() -> int:
    """How many workers share this host's cores: the exported count, else xdist's worker count."""
    for name in (WORKERS_ENV, "PYTEST_XDIST_WORKER_COUNT"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1
