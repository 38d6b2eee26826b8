"""The network section's screen: the section screen plus "Ping from…", the documentation's
multicast test repeated on request with the operator's choice of sender (or each in turn)."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.binding import Binding

from omwizard.engine.events import StepFinished, StepStarted
from omwizard.engine.runner import Result
from omwizard.engine.step import FAILED, OK, Finding
from omwizard.remote.results import RemoteError
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

    def __init__(self, step: str | None = None) -> None:
        super().__init__("network", step=step)

    def ping_step(self) -> Any:
        return next((s for s in self.steps if s.name == PING_STEP), None)

    def ping_nodes(self) -> list[Any]:
        """The nodes that take part in the multicast test (OM nodes, join multicast)."""
        step = self.ping_step()
        if step is None:
            return []
        ctx = self.app.engine(["network"]).context().bind(step)  # type: ignore[attr-defined]
        return [n for n in self.app.plan.nodes  # type: ignore[attr-defined]
                if step.applies(ctx, n) is None]

    def action_ping_from(self) -> None:
        from omwizard.tui.screens.modals import ChooseScreen

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
        from omwizard.sections.network import multicast_ping, ping_from_each

        app: Any = self.app
        step = self.ping_step()
        nodes = self.ping_nodes()
        senders = [n.name for n in nodes] if sender == EACH else [sender]
        if step is None or not self.begin(f"multicast ping from {', '.join(senders)}…",
                                          len(nodes) * len(senders)):
            return {}
        rounds: dict[str, dict[str, Finding]] = {}
        try:
            app.pool.forget_failures()
            app.touch(section=self.section, step=step.name)
            engine = app.engine(["network"])
            ctx = engine.context().bind(step)
            for node in nodes:
                app.bus.emit(StepStarted("network", step.name, node.name, "check"))
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
                                      f"{snd}: {f.status} {app.redactor(f.detail)}")
            for node in nodes:
                self.record(step, node.name, rounds)
        finally:
            self.end(f"multicast ping from {', '.join(senders)} done")
        return rounds

    def record(self, step: Any, node: str, rounds: dict[str, dict[str, Finding]]) -> None:
        """One result per node: failed if any round failed there, with each round's words."""
        app: Any = self.app
        redact = app.redactor
        findings = [(snd, found[node]) for snd, found in rounds.items() if node in found]
        if not findings:
            return
        failed = [f for _, f in findings if f.status != OK]
        status = FAILED if failed else OK
        detail = "; ".join(f"from {snd}: {f.detail}" for snd, f in findings)
        result = Result("network", step.name, node, status, redact(detail),
                        remedy=redact(failed[0].remedy) if failed else "",
                        evidence=[redact(e) for _, f in findings for e in f.evidence])
        if app.state is not None:
            app.state.set_result(result.key, {**result.as_json(), "at": result.at})
        app.bus.emit(StepFinished(result.as_json()))
