"""The ports proof as one script per node (issue 21): listener and probes together, run for real
here on loopback (two nodes as two processes, started apart), and the parser over its output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from omwizard.facts.network import (
    Probe,
    listener_for,
    parse_ports_run,
    path_verdict,
    worth_probing,
)
from omwizard.facts.preflight import PORTS_LISTEN, PORTS_PY, PORTS_WINDOW, ports_command


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(want: dict, targets: list, window: float = 3.0, limit: float = 1.0,
          silence: float = 0.6, listen: float = 4.0) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", PORTS_PY, json.dumps(want), json.dumps(targets),
            str(window), str(limit), str(silence), str(listen)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_nodes_started_apart_find_each_other_and_end_early():
    a_tcp, b_tcp = free_port(), free_port()
    a_udp, b_udp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    began = time.monotonic()
    a = start({"tcp": {a_tcp: 1}, "udp": {a_udp: 1}},
              [["tcp", "127.0.0.1", b_tcp], ["udp", "127.0.0.1", b_udp]])
    time.sleep(0.7)  # b's listener comes up late: a's probes are refused meanwhile, and retried
    b = start({"tcp": {b_tcp: 1}, "udp": {b_udp: 1}},
              [["tcp", "127.0.0.1", a_tcp], ["udp", "127.0.0.1", a_udp]])
    out_a, _ = a.communicate(timeout=20)
    out_b, _ = b.communicate(timeout=20)
    took = time.monotonic() - began
    run_a, run_b = parse_ports_run(out_a), parse_ports_run(out_b)
    assert run_a.ready is not None and run_a.ready["bound"] == {"tcp": [a_tcp], "udp": [a_udp]}
    assert run_a.ready["busy"] == {"tcp": [], "udp": []}
    assert run_a.results == {f"tcp:127.0.0.1:{b_tcp}": ("open", ""),
                             f"udp:127.0.0.1:{b_udp}": ("open", "")}
    assert run_b.results == {f"tcp:127.0.0.1:{a_tcp}": ("open", ""),
                             f"udp:127.0.0.1:{a_udp}": ("open", "")}
    # every expected probe came: both listeners ended by themselves, well before their window
    assert run_a.end == run_b.end == "DONE"
    assert took < 3.5


def test_busy_ports_count_as_the_running_service_and_silent_udp_is_not_judged():
    with socket.socket() as service, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        service.bind(("", 0))
        service.listen(8)
        quiet.bind(("", 0))
        tcp, udp = service.getsockname()[1], quiet.getsockname()[1]
        began = time.monotonic()
        node = start({"tcp": {tcp: 1}, "udp": {udp: 1}},
                     [["tcp", "127.0.0.1", tcp], ["udp", "127.0.0.1", udp]])
        out, _ = node.communicate(timeout=20)
        took = time.monotonic() - began
    run = parse_ports_run(out)
    assert run.ready is not None
    assert run.ready["busy"] == {"tcp": [tcp], "udp": [udp]}
    assert run.results[f"tcp:127.0.0.1:{tcp}"] == ("open", "")
    # a silent UDP port waits only the silence, not the whole window
    assert run.results[f"udp:127.0.0.1:{udp}"] == ("filtered", "")
    assert took < 2.5
    ready = {"n2": run.ready}
    t = Probe("n1", "n2", "127.0.0.1", "tcp", tcp, "Hazelcast")
    u = Probe("n1", "n2", "127.0.0.1", "udp", udp, "Hazelcast multicast")
    assert listener_for(t, ready) == listener_for(u, ready) == "busy"
    got = path_verdict(t, *run.results[t.key], listener_for(t, ready))
    assert not got.blocked and got.text == "reaches the running service"
    assert not worth_probing(u, listener_for(u, ready))  # judged "not probed", as before


def test_refused_is_retried_until_the_window_then_judged_with_the_listener():
    closed = free_port()
    began = time.monotonic()
    node = start({}, [["tcp", "127.0.0.1", closed]], window=1.0)
    out, _ = node.communicate(timeout=20)
    took = time.monotonic() - began
    run = parse_ports_run(out)
    assert run.results == {f"tcp:127.0.0.1:{closed}": ("refused", "")}
    assert 0.9 <= took < 3
    p = Probe("n1", "n2", "127.0.0.1", "tcp", closed, "Hazelcast")
    assert not path_verdict(p, "refused", "", "none").blocked  # nothing listens: path open
    assert path_verdict(p, "refused", "", "ours").blocked  # our listener was up: REJECT


def test_a_listener_whose_probes_never_come_stops_at_its_window():
    port = free_port()
    began = time.monotonic()
    node = start({"tcp": {port: 2}}, [], listen=1.0)
    out, _ = node.communicate(timeout=20)
    assert parse_ports_run(out).end == "STOPPED"
    assert 0.9 <= time.monotonic() - began < 3


def test_parse_ports_run_on_captured_output():
    out = (
        'READY {"bound": {"tcp": [5701, 5636], "udp": [54327]}, "busy": {"tcp": [], "udp": []},'
        ' "pid": 77}\n'
        '{"proto": "tcp", "host": "198.18.0.12", "port": 5701, "result": "filtered", '
        '"error": ""}\n'
        "Traceback (most recent call last):\n"
        '{"proto": "udp", "host": "198.18.0.12", "port": 54327, "result": "open", "error": ""}\n'
        "STOPPED\n"
    )
    run = parse_ports_run(out)
    assert run.ready == {"bound": {"tcp": [5701, 5636], "udp": [54327]},
                         "busy": {"tcp": [], "udp": []}, "pid": 77}
    assert run.results == {"tcp:198.18.0.12:5701": ("filtered", ""),
                           "udp:198.18.0.12:54327": ("open", "")}
    assert run.end == "STOPPED"
    assert parse_ports_run("python3: not found\n") == parse_ports_run("")
    assert parse_ports_run("").ready is None and parse_ports_run("").end is None


def test_ports_command_is_bounded_and_quoted():
    cmd = ports_command({"tcp": {5701: 2}}, [("tcp", "198.18.0.12", 5701)])
    assert cmd.startswith("timeout ") and " python3 -c " in cmd
    bound = int(cmd.split()[1])
    assert bound > PORTS_LISTEN > PORTS_WINDOW
    assert "'[[\"tcp\", \"198.18.0.12\", 5701]]'" in cmd
