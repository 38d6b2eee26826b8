"""The doctor's OpenJPA remote-commit port (TCP 5636) judgement, on probe results."""

from __future__ import annotations

from omwizard.facts import doctor as dx

ADDR = {"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3"}


def probe(**blocked: str) -> dict[str, dict[str, str]]:
    """Every node's view of the others: refused (nothing listens) unless named."""
    return {src: {a: blocked.get(t, "refused") for t, a in ADDR.items() if t != src}
            for src in ADDR}


def test_nothing_listening_anywhere_is_no_finding() -> None:
    assert dx.judge_openjpa_port(probe(), ADDR) == {}


def test_all_open_is_no_finding() -> None:
    seen = {src: {a: "open" for t, a in ADDR.items() if t != src} for src in ADDR}
    assert dx.judge_openjpa_port(seen, ADDR) == {}


def test_a_dropped_port_names_that_node_and_who_cannot_reach_it() -> None:
    found = dx.judge_openjpa_port(probe(n2="filtered"), ADDR)
    assert set(found) == {"n2"}
    (problem,) = found["n2"]
    assert problem.cause.code == "openjpa-port-blocked" and problem.cause.seen == "n1,n3"
    assert "5636" in problem.what and "5636" in problem.fix and problem.evidence


def test_rejected_where_others_get_through_is_blocked() -> None:
    seen = {"n1": {"10.0.0.2": "open"}, "n3": {"10.0.0.2": "refused"}, "n2": {}}
    found = dx.judge_openjpa_port(seen, {"n2": "10.0.0.2"})
    assert [p.cause.seen for p in found["n2"]] == ["n3"]
