"""The network section's screen: the section screen plus "Ping from…", the documentation's
multicast test repeated on request with the operator's choice of sender (or each in turn)."""

from __future__ import annotations

from textual import work
from textual.binding import Binding

from omwizard.engine import operator
from omwizard.engine.events import StepStarted
from omwizard.engine.session import Session
from omwizard.engine.step import Finding, Step
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError
from omwizard.sections.network import multicast_ping, ping_from_each
from omwizard.tui.messages import Visiting
from omwizard.tui.screens.modals import ChooseScreen
from omwizard.tui.screens.section import SYMBOLS, SectionScreen

PING_STEP = "multicast-ping"
EACH = "*each*"


class NetworkScreen(SectionScreen):
    BINDINGS = [
        *SectionScreen.BINDINGS,
        Binding("g", "ping_from", "Ping", tooltip="Ping from… (the multicast test)"),
    ]
    PALETTE = [
        *SectionScreen.PALETTE,
        ("Ping from…", "Repeat the multicast test with another node sending", "ping_from"),
    ]

    def __init__(self, session: Session, step: str | None = None, *,
                 auto_check: bool = False) -> None:
        super().__init__(session, "network", step=step, auto_check=auto_check)

    def ping_step(self) -> Step | None:
        return next((s for s in self.steps if s.name == PING_STEP), None)

    def ping_nodes(self) -> list[Node]:
        """The nodes that take part in the multicast test (OM nodes, join multicast)."""
        step = self.ping_step()
        if step is None:
            return []
        return operator.applicable_nodes(self.session.engine(["network"]), step)

    def action_ping_from(self) -> None:
        nodes = self.ping_nodes()
        if not nodes:
            self.notify("no node takes part in the multicast test (join: tcp-ip, or no OM node)",
                        severity="warning")
            return
        if self.busy:
            self.notify("still working; wait for it to finish", severity="warning")
            return
        choices = [(n.name, f"{n.name}  ({n.address})") for n in nodes]
        choices.append((EACH, "each node in turn"))

        def chosen(sender: str | None) -> None:
            if sender:
                self.ping_from(sender)

        self.app.push_screen(ChooseScreen(
            "Ping from…", "Which node sends the multicast ping? Every node captures.", choices),
            chosen)

    @work(exclusive=True, group="engine")
    async def ping_from(self, sender: str) -> dict[str, dict[str, Finding]]:
        """Run the test from `sender` (or each node in turn); every node's verdict goes to the
        grid, the log and the session, as the step's check result."""
        step = self.ping_step()
        nodes = self.ping_nodes()
        senders = [n.name for n in nodes] if sender == EACH else [sender]
        if step is None or not self.begin(f"multicast ping from {', '.join(senders)}…",
                                          len(nodes) * len(senders)):
            return {}
        rounds: dict[str, dict[str, Finding]] = {}
        try:
            self.session.pool.forget_failures()
            self.post_message(Visiting(self.section, step.name))
            engine = self.session.engine(["network"])
            ctx = engine.context().bind(step)
            for node in nodes:
                engine.bus.emit(StepStarted("network", step.name, node.name, "check"))
            try:
                if sender == EACH:
                    rounds = await ping_from_each(ctx, nodes)
                else:
                    rounds = {sender: await multicast_ping(ctx, nodes, sender)}
            except RemoteError as exc:
                rounds = {s: {n.name: Finding.failed(exc.message, exc.remedy) for n in nodes}
                          for s in senders}
            for snd, found in rounds.items():
                for node in nodes:
                    f = found.get(node.name)
                    if f is not None:
                        self.log_line(node.name, f"{SYMBOLS.get(f.status, '?')} ping from "
                                      f"{snd}: {f.status} {engine.redact(f.detail)}")
            for node in nodes:
                result = operator.combine_rounds(engine, step, node.name, rounds)
                if result is not None:
                    engine.finish(result)
        finally:
            self.end(f"multicast ping from {', '.join(senders)} done")
        return rounds
