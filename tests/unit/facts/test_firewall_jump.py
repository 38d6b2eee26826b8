"""after_jump: how every tool's walker folds a sub-chain's outcome into its caller's."""

from omwizard.facts.firewall_paths import after_jump


def test_a_matched_jump_whose_chain_decides_decides() -> None:
    maybe = {"drop"}
    got = after_jump(True, ("accept", "iptables svc (ACCEPT rule)", {"unknown"}), maybe)
    assert got == ("accept", "iptables svc (ACCEPT rule)", {"drop", "unknown"})


def test_a_matched_jump_that_returns_walks_on_keeping_what_it_could_not_read() -> None:
    maybe: set[str] = set()
    assert after_jump(True, ("continue", "", {"accept"}), maybe) is None
    assert maybe == {"accept"}


def test_an_unreadable_jump_only_adds_what_its_chain_could_have_led_to() -> None:
    maybe: set[str] = set()
    assert after_jump(None, ("drop", "nftables ip filter x (drop rule)", {"continue", "accept"}),
                      maybe) is None
    assert maybe == {"drop", "accept"}
