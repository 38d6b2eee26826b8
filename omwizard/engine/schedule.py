"""When each of an apply's steps may run (issue 21): as soon as what it reads is settled.

A step declares what on a node its check reads (`Step.reads`) and what its apply can change
(`Step.writes`), as `Resource`s; undeclared (None) is everything. An apply then runs every
step as early as the steps before it allow, and no earlier:

- a step's check waits for every earlier step that can change what it reads (that step's
  change and re-check over), so it sees the node as one step after another would;
- a step's change waits, besides, for every earlier step that reads or changes what it can
  change, so no earlier check sees its change, and two changes of one thing keep their order.

Steps that declare nothing wait for every change before them and hold back every change
after them, exactly the windows of proofs closed by one change that the apply ran before.
Results are still reported in step order (engine/runner.py). Pure: tested on data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import NamedTuple, TypeVar

S = TypeVar("S")


class Resource(StrEnum):
    """What a step reads or changes on the nodes, as coarse as safety allows."""

    OM_INSTALL = "om-install"        # OpenMeetings' home and its files as installed
    TIMEZONE = "timezone"
    CLOCK = "clock"
    FIREWALL = "firewall"            # live rules and their persisted copies
    LINKS = "links"                  # interfaces and their addresses
    ROUTE = "route"                  # the live multicast route
    ROUTE_CONFIG = "route-config"    # the network configuration that survives a reboot
    DB_SERVER = "db-server"          # the database server: accounts, grants, bind address
    PERSISTENCE = "persistence"      # persistence.xml
    JAVA_OPTS = "java-opts"          # setenv.sh / the unit's drop-in
    DATA_DIR = "data-dir"            # the data folder, its owner and what is mounted there
    NFS_EXPORTS = "nfs-exports"
    NFS_MOUNT = "nfs-mount"
    PACKAGES = "packages"            # the package manager (one install at a time)
    HAZELCAST = "hazelcast"          # hazelcast.xml
    OM_PROCESS = "om-process"        # the running OpenMeetings


EVERYTHING = frozenset(Resource)


class Waits(NamedTuple):
    """The earlier steps (their places in the run) a step's check and its change wait for."""

    check: frozenset[int]
    change: frozenset[int]


def _or_all(declared: frozenset[Resource] | None) -> frozenset[Resource]:
    return EVERYTHING if declared is None else declared


def waits(steps: Sequence[S], *, reads: Callable[[S], frozenset[Resource] | None],
          writes: Callable[[S], frozenset[Resource] | None],
          changes: Callable[[S], bool]) -> list[Waits]:
    """For each step in order, the earlier ones it waits for (module docstring). A step
    that `changes` nothing writes nothing, whatever it declares."""
    read = [_or_all(reads(s)) for s in steps]
    wrote = [_or_all(writes(s)) if changes(s) else frozenset[Resource]() for s in steps]
    out: list[Waits] = []
    for i in range(len(steps)):
        check = frozenset(j for j in range(i) if wrote[j] & read[i])
        change = frozenset(j for j in range(i) if (read[j] | wrote[j]) & wrote[i])
        out.append(Waits(check, check | change))
    return out
