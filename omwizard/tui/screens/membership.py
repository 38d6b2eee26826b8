"""The cluster's membership and what a plan change will touch, before it is applied (F3).

One row per node of the current plan, and per node that left it: its roles, whether the last
verify.members saw it in the cluster (from the session's saved results), how the plan changes
it (joining, leaving, staying) and what an apply will touch there (facts.membership's
prediction; `apply --dry-run` answers exactly from the nodes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

from omwizard.engine.events import Event, StepFinished
from omwizard.engine.removal import Leaving, RemovalError, plan_without, remove_node
from omwizard.engine.runner import summarize
from omwizard.engine.step import STATUS_SYMBOLS
from omwizard.facts.membership import plan_change, predict_touch
from omwizard.plan.model import Plan, PlanError, dump_plan, parse_plan_text
from omwizard.tui.messages import NodeAdded, NodeRemoved
from omwizard.tui.screens.modals import ChooseScreen
from omwizard.tui.screens.nodeforms import AddedNode, AddNodeScreen, RemoveNodeScreen

if TYPE_CHECKING:
    from omwizard.engine.session import Session


def base_plan(text: str | None) -> Plan | None:
    """The saved plan a change is shown against (secrets are not needed to compare)."""
    if not text:
        return None
    try:
        return parse_plan_text(text, env={})
    except PlanError:
        return None


def membership_table(before: Plan | None, after: Plan,
                     results: Mapping[str, Mapping[str, Any]], program: str = "omwizard"
                     ) -> Table:
    """Node, roles, member (last verify.members), plan change, will touch; program: this
    program as the operator runs it (the commands named)."""
    change = plan_change([n.name for n in before.nodes] if before else None,
                         [n.name for n in after.nodes])
    touch = predict_touch(before, after)
    table = Table(expand=True)
    for column in ("node", "roles", "member", "plan change", "an apply touches"):
        table.add_column(column)
    gone = [n for n in (before.nodes if before else ()) if n.name in change.removed]
    for node in (*after.nodes, *gone):
        seen = results.get(f"verify/members/{node.name}", {}).get("status")
        member = ("yes" if seen == "ok" else "no" if seen == "failed" else "not checked") \
            if node.is_om else "-"
        how = ("joining" if node.name in change.added
               else f"leaving ({program} remove-node)" if node.name in change.removed
               else "stays")
        what = "; ".join(touch.get(node.name, ())) or (
            f"nothing ({program} remove-node stops it)" if node.name in change.removed
            else "nothing")
        table.add_row(node.name, ", ".join(node.roles), member, how, what)
    return table


class MembershipScreen(ModalScreen[None]):
    """Who is in the cluster and what the plan being edited would change, by node; add a node
    to the plan, or take one out of the running cluster.

    Given the App's session, plan dict and secret environment (attributes down); the plan
    changes travel up as NodeAdded / NodeRemoved (the App adopts the plan and rewrites the
    plan file, comments kept). A removal runs here, in a worker, on the session's engine: the
    same orchestration as `remove-node` (engine/removal.py).
    """

    BINDINGS = [
        Binding("escape", "dismiss", "Back", tooltip="Back where you were"),
        Binding("a", "add", "Add a node", tooltip="Add a node to the plan"),
        Binding("r", "remove", "Remove a node", tooltip="Take a node out of the cluster"),
    ]

    def __init__(self, before: Plan | None, after: Plan,
                 results: Mapping[str, Mapping[str, Any]], *,
                 session: Session | None = None, data: dict[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, program: str = "omwizard",
                 plan_file: str | None = None) -> None:
        super().__init__()
        self.before = before
        self.after = after
        self.results = results
        self.session = session
        self.data = data
        self.env: Mapping[str, str] = env if env is not None else {}
        self.program = program
        self.plan_file = plan_file
        self.busy = False
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Cluster {self.after.cluster.name}: membership", id="dialog-title")
            with VerticalScroll():
                yield Static(self.table(), id="membership-table")
                yield Static("", id="membership-status", markup=False)
            yield Label(self.note(), id="membership-note", markup=False)
        yield Footer(compact=True)

    def table(self) -> Table:
        return membership_table(self.before, self.after, self.results, self.program)

    def apply_command(self) -> str:
        return f"{self.program} apply {self.plan_file or 'PLAN'}"

    def note(self) -> str:
        against = ("against the plan saved when this session opened" if self.before is not None
                   else "no plan applied yet: every node gets every section")
        return (f"Predicted {against}; `{self.apply_command()} --dry-run` lists exactly the "
                "nodes touched and the ones left alone.")

    def show(self, line: str) -> None:
        """A line of the status under the table (progress and results of add and remove)."""
        self.lines.append(line)
        self.query_one("#membership-status", Static).update("\n".join(self.lines))
        self.query_one(VerticalScroll).scroll_end(animate=False)

    def redraw(self) -> None:
        self.query_one("#membership-table", Static).update(self.table())
        self.query_one("#membership-note", Label).update(self.note())

    async def action_dismiss(self, result: None = None) -> None:
        if self.busy:
            self.notify("a node is being removed: wait for it to finish", severity="warning")
            return
        self.dismiss(result)

    # -- add ----------------------------------------------------------------------------------

    def action_add(self) -> None:
        if self.busy:
            self.notify("a node is being removed: wait for it to finish", severity="warning")
            return
        if self.data is None:
            self.notify("no plan is being edited here", severity="warning")
            return
        self.app.push_screen(AddNodeScreen(self.data, self.env), self.added)

    def added(self, answer: AddedNode | None) -> None:
        if answer is None:
            return
        name = answer.node["name"]
        self.after, self.data = answer.plan, answer.data
        self.post_message(NodeAdded(answer.plan, answer.data, answer.node))
        self.redraw()
        saved = (f"saved in the session and in {self.plan_file} (comments kept)"
                 if self.plan_file else "saved in the session (export it to a file)")
        self.show(f"+ {name} added to the plan, {saved}. Nothing was changed on a node: the "
                  f"table says what an apply will touch. Apply it: `{self.apply_command()}` "
                  "(--dry-run first lists exactly the nodes touched), or section by section "
                  "from the wizard's sections.")

    # -- remove -------------------------------------------------------------------------------

    def action_remove(self) -> None:
        if self.busy:
            self.notify("a node is being removed already", severity="warning")
            return
        if self.session is None or self.data is None:
            self.notify("no session: open the plan first", severity="warning")
            return
        choices = [(n.name, f"{n.name}  {n.address}  ({', '.join(n.roles)})")
                   for n in self.after.nodes]
        self.app.push_screen(ChooseScreen("Remove a node", "Which node leaves the cluster?",
                                          choices), self.chosen)

    def chosen(self, name: str | None) -> None:
        if name is None:
            return
        try:
            after, _ = plan_without(self.after, dump_plan(self.after), name, self.env,
                                    "the plan")
        except RemovalError as exc:
            self.show(f"✗ {exc}")
            return
        leaving = self.after.node(name)
        peers = ", ".join(n.name for n in after.nodes)
        body = (f"{leaving.name} ({leaving.address}) leaves cluster {self.after.cluster.name}: "
                f"OpenMeetings on it is stopped; {peers} drop it (exports, database account, "
                "firewall rules, member lists) and restart only where their configuration "
                "changed, one at a time; the members are verified. The plan"
                f"{' and ' + self.plan_file if self.plan_file else ''} lose it once all is "
                f"done (`{self.program} remove-node` does the same).")

        def confirmed(answer: str | None) -> None:
            if answer is None:
                self.show(f"- {name} not removed: nothing was changed")
            else:
                self.run_removal(name, after, "rollback" if answer == "rollback" else "keep")

        self.app.push_screen(RemoveNodeScreen(name, body), confirmed)

    @work(exclusive=True, group="membership")
    async def run_removal(self, name: str, after: Plan, leaving: Leaving) -> None:
        """The shared orchestration on the session's engine; each result shown as it comes."""
        assert self.session is not None and self.data is not None
        session = self.session

        def listen(event: Event) -> None:
            if isinstance(event, StepFinished):
                r = event.result
                self.show(f"{STATUS_SYMBOLS.get(r.status, '?')} {r.node} "
                          f"{r.section}.{r.step}: {r.detail}")

        self.busy = True
        own = "rolled back" if leaving == "rollback" else "kept"
        self.show(f"Removing {name} (its own changes {own})...")
        session.bus.subscribe(listen)
        try:
            results = await remove_node(session, session.plan, after, name, leaving)
        except Exception as exc:  # noqa: BLE001 - shown, the screen stays usable
            self.show(f"✗ {name} not removed: {exc}; fix it and remove it again "
                      "(what was done is journaled)")
            return
        finally:
            session.bus.unsubscribe(listen)
            self.busy = False
        summary = summarize(results)
        if summary["failed"] + summary["needs_change"]:
            self.show(f"✗ {name} not fully removed ({summary['failed']} failed, "
                      f"{summary['needs_change']} need a change): the plan still lists it; "
                      "fix what failed and remove it again (done parts are not redone)")
            return
        data = copy.deepcopy(self.data)
        data["nodes"] = [n for n in data.get("nodes", []) if n.get("name") != name]
        self.before = self.after = after
        self.data = data
        if session.state is not None:  # the members as verified just now
            self.results = session.state.results()
        self.post_message(NodeRemoved(after, data, name))
        self.redraw()
        self.show(f"✓ {name} removed: its peers dropped it and the members were verified; "
                  f"the plan{' and ' + self.plan_file if self.plan_file else ''} no longer "
                  "list it")
