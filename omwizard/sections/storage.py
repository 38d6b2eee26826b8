"""File systems: one data folder for every OpenMeetings node, as the documentation's NFS recipe.

Steps, in the page's order: `data-dir` (-DDATA_DIR in the OM JVM, the folder owned by the OM
user), `nfs-server` (the node with role storage exports the folder to every other OM node),
`nfs-client` (every other OM node mounts it through /etc/fstab), then `shared` (beyond the
page: a file written on one node is read on every other, and the OM user has the same numeric
ids everywhere, because NFS compares numbers, not names). With `storage.kind: existing` the
two NFS steps are skipped and `shared` still proves the folder is shared.

A failure after a file edit (exportfs, mount) puts the file back at once, through the same
journaled edit path, so a failed apply never leaves a half-configured /etc/exports or fstab.
Decisions are pure functions in omwizard.facts.storage and omwizard.configs.{exports,fstab}.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from collections.abc import Callable

from omwizard.configs.exports import ExportsConflict
from omwizard.configs.fstab import FstabConflict, fstab_ensure
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import Finding, Step, StepContext, only_om
from omwizard.facts import storage as sf
from omwizard.facts.javaopts import JAVA_OPTS_FILES, SYSTEMD_RUNNING
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, RunResult
from omwizard.sections._javaopts import add_java_opts, java_opts_status, locate

EXPORTS = "/etc/exports"
FSTAB = "/etc/fstab"
SHARED_TIMEOUT = 60  # the shared-files proof's command on a node (its own waits: seconds)
MOUNT_TIMEOUT = 120  # mount of a hard NFS export can retry for minutes; bound it
INSTALL_TIMEOUT = 900

DOC_DATA_DIR = (
    "To ease upgrade process set OM data dir to some external folder: for ex. /opt/omdata. "
    "(omwizard: -DDATA_DIR=<storage.path> in the OM JVM options; the folder owned by the user "
    "OpenMeetings runs as.)"
)
DOC_SERVER = (
    "Install NFS to the data server. In the file /etc/exports add the following lines: "
    "/opt/omdata 10.1.1.2(rw,sync,no_subtree_check,no_root_squash) Here 10.1.1.2 - is node ip "
    "for NFS remote access. Add these lines for all nodes except node with folders."
)
DOC_CLIENT = (
    "Install NFS common tools to other nodes. In the file /etc/fstab do the following: "
    "10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr Here 10.1.1.1 - data server ip. "
    "And run the command: mount -a"
)
DOC_SHARED = (
    "If files and recordings using the same physical folders the files and recordings will be "
    "available for each node. (omwizard: a file written on one node must be readable on every "
    "other, and the OM user must have the same uid/gid everywhere: NFS compares numbers.)"
)


# -- shared helpers ----------------------------------------------------------------------------


def nfs_only(plan: Plan, _node: Node) -> str | None:
    if plan.storage.kind != "nfs":
        return (
            f"storage.kind is {plan.storage.kind}: {plan.storage.path} is already shared; "
            "no NFS is set up (step shared proves the sharing)"
        )
    return None


def storage_server(_plan: Plan, node: Node) -> str | None:
    return None if node.is_storage else "not the NFS server (role storage)"


def not_storage_server(_plan: Plan, node: Node) -> str | None:
    if node.is_storage:
        return "the NFS server itself: OpenMeetings there uses the folder directly"
    return None


async def om_user(ctx: StepContext, node: Node) -> tuple[str, str, str]:
    """(user, group, where that came from) that OpenMeetings runs as on this node: a declared
    fact (sf.OM_USER), resolved by the node's shell, so it is read with the node's others."""
    who = await ctx.fact(node, sf.OM_USER)
    return who.user, who.group, who.source


async def ensure_package(ctx: StepContext, node: Node, state: sf.PackageState) -> None:
    """Install the NFS package with the node's package manager, progress streamed."""
    try:
        argv = sf.install_argv(state)
    except ValueError as exc:
        raise RemoteError(
            node.name, str(exc), "install the NFS packages by hand, then run apply"
        ) from None
    await ctx.change_command(
        node,
        argv,
        None,
        stream=True,
        timeout=INSTALL_TIMEOUT,
        undo_text=sf.INSTALL_UNDO_TEXT,
        remedy=(
            f"read the package manager's output above; if {state.name} was not found, refresh "
            "the package lists (apt-get update / dnf makecache) and run apply again"
        ),
    )


async def ensure_folder(ctx: StepContext, node: Node, path: str) -> None:
    """mkdir -p; undone by rmdir, which never removes a folder that has files in it."""
    await ctx.change_command(
        node,
        ["mkdir", "-p", "--", path],
        ["rmdir", "--", path],
        undo_ok_text=("Directory not empty", "No such file or directory"),
    )


async def ensure_nfs_basics(ctx: StepContext, node: Node, seen: sf.NfsState) -> None:
    """An NFS step's first changes, where its check found them missing: the package, then
    the folder (the server's export, the client's mount point)."""
    if not seen.package.installed:
        await ensure_package(ctx, node, seen.package)
    if not seen.folder:
        await ensure_folder(ctx, node, ctx.plan.storage.path)


async def edit_then_run(
    ctx: StepContext,
    node: Node,
    path: str,
    transform: Callable[[str | None], str | None],
    argv: list[str],
    undo_argv: list[str] | None,
    *,
    undo_text: str = "",
    undo_ok_text: tuple[str, ...] = (),
    timeout: float = 120,
    explain: Callable[[str], str],
) -> None:
    """Edit a file, then run the command that puts it in force; on failure restore the file.

    The engine's rollback cannot be invoked from a step, so the restore is itself a journaled
    edit back to the exact original text (a file that did not exist is left empty, which both
    exports and fstab read as "nothing"). A later rollback undoes both edits, newest first,
    and ends byte-identical to the original.
    """
    seen: dict[str, str | None] = {}

    def recording(text: str | None) -> str | None:
        seen["before"] = text
        return transform(text)

    change = await ctx.edit_file(node, path, recording)
    try:
        await ctx.change_command(
            node, argv, undo_argv, undo_text=undo_text, undo_ok_text=undo_ok_text, timeout=timeout
        )
    except RemoteError as exc:
        if change is None:
            raise
        original = seen.get("before")
        try:
            await ctx.edit_file(node, path, lambda _now: original if original is not None else "")
        except RemoteError as restore_exc:
            raise RemoteError(
                node.name,
                f"{exc.message}; restoring {path} failed too: {restore_exc.message}",
                f"restore {path} by hand from {change.undo}; then run rollback",
            ) from None
        raise RemoteError(
            node.name,
            f"{exc.message}; {path} was restored as it was before this step",
            explain(exc.message),
        ) from None


# -- data-dir ----------------------------------------------------------------------------------


class StorageStep(Step):
    """The storage section's steps."""

    section = "storage"


class DataDirStep(StorageStep):
    reads = frozenset({R.JAVA_OPTS, R.DATA_DIR, R.OM_PROCESS})
    writes = frozenset({R.JAVA_OPTS, R.DATA_DIR})
    only_om = True
    # the folder's owner, who OM runs as, what is left in the default data dir: all declared,
    # so a check reads them with the node's other facts (no round trip of its own)
    facts = (SYSTEMD_RUNNING, sf.OM_USER, sf.DATA_FOLDER, sf.DEFAULT_LEFTOVERS)
    files = (JAVA_OPTS_FILES,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        path = ctx.plan.storage.path
        option = sf.data_dir_option(path)
        opts = await java_opts_status(ctx, node, [option])
        if opts.status == "failed":
            return opts
        src = await locate(ctx, node)
        default = sf.default_data_dir(ctx.plan)
        current = sf.current_data_dir(src.effective, default)
        olds = [o for o in dict.fromkeys((current, default)) if o.rstrip("/") != path.rstrip("/")]
        user, group, source = await om_user(ctx, node)
        folder = await ctx.fact(node, sf.DATA_FOLDER)
        evidence = [await ctx.fact_evidence(node, sf.DATA_FOLDER)]
        warnings = []
        for old in olds:
            if old == default:  # declared: read with the node's facts
                listing, shown = (await ctx.fact(node, sf.DEFAULT_LEFTOVERS),
                                  await ctx.fact_evidence(node, sf.DEFAULT_LEFTOVERS))
            else:  # a data dir of the node's own choosing, named by its JAVA_OPTS
                got = await ctx.run(node, sf.leftovers_probe(old, path))
                listing, shown = got.stdout, got.evidence()
            warning = sf.leftovers_warning(old, path, listing)
            if warning:
                warnings.append(warning)
                evidence.append(shown)
        problems = []
        if opts.status != "ok":
            problems.append(opts.detail)
        if not folder.exists:
            problems.append(f"{path} does not exist")
        elif not sf.owner_ok(folder, user, group):
            problems.append(
                f"{path} is owned by {folder.owner}, OM runs as {user}:{group} ({source})"
            )
        data = sf.DataDirState(
            opts_missing=opts.status != "ok",
            exists=folder.exists,
            owner_ok=sf.owner_ok(folder, user, group),
            numeric=folder.numeric,
            user=user,
            group=group,
        )
        warn = " WARNING: " + " ".join(warnings) if warnings else ""
        if not problems:
            detail = f"{opts.detail}; {path} owned by {user}:{group}"
            finding = Finding.ok(detail + warn, *evidence, data=data)
            finding.remedy = " ".join(warnings)
            return finding
        remedy = (
            f"omwizard sets {option} where JAVA_OPTS live, creates {path} and gives it to "
            f"{user}:{group}; restart OpenMeetings afterwards"
        )
        return Finding.needs("; ".join(problems) + warn, remedy + warn, *evidence, data=data)

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        path = ctx.plan.storage.path
        data = finding.typed(sf.DataDirState)
        if data.opts_missing:
            await add_java_opts(ctx, node, [sf.data_dir_option(path)])
        if not data.exists:
            await ensure_folder(ctx, node, path)
        if data.owner_ok:
            return
        owner = f"{data.user}:{data.group}"
        old = data.numeric if data.exists else None
        await ctx.change_command(
            node,
            ["chown", owner, "--", path],
            ["chown", old, "--", path] if old else None,
            undo_text="the folder omwizard made is removed by the mkdir's undo",
            undo_ok_text=("No such file or directory",),
        )


# -- nfs-server --------------------------------------------------------------------------------


class NfsServerStep(StorageStep):
    reads = frozenset({R.DATA_DIR, R.NFS_EXPORTS, R.PACKAGES})
    writes = frozenset({R.DATA_DIR, R.NFS_EXPORTS, R.PACKAGES})
    skip_when = (nfs_only, storage_server)
    facts = (sf.NFS_SERVER_PACKAGE, sf.DATA_FOLDER, sf.LIVE_EXPORTS)
    files = (sf.EXPORTS_FILE,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        st = ctx.plan.storage
        clients = sf.client_addresses(ctx.plan, node)
        pkg = await ctx.fact(node, sf.NFS_SERVER_PACKAGE)
        pkg_evidence = await ctx.fact_evidence(node, sf.NFS_SERVER_PACKAGE)
        folder = await ctx.fact(node, sf.DATA_FOLDER)
        current = await ctx.read_text(node, EXPORTS)
        try:
            wanted = sf.exports_text(current, st.path, clients, st.export_options)
        except ExportsConflict as exc:
            return Finding.failed(
                str(exc),
                f"edit {EXPORTS} on {node.name} so that line says ({st.export_options}), or "
                "set storage.export_options to what it says; then run apply",
                pkg_evidence,
            )
        live = await ctx.fact(node, sf.LIVE_EXPORTS) if pkg.installed else {}
        live_evidence = [await ctx.fact_evidence(node, sf.LIVE_EXPORTS)] if pkg.installed else []
        not_live = sf.missing_live_exports(live, st.path, clients, st.export_options)
        problems = []
        if not pkg.installed:
            problems.append(f"package {pkg.name or 'nfs-kernel-server'} is not installed")
        if not folder.exists:
            problems.append(f"{st.path} does not exist")
        if wanted != (current or ""):
            problems.append(f"{EXPORTS} lacks the export to {', '.join(clients)}")
        if not_live:
            problems.append(f"{st.path} is not exported now to {', '.join(not_live)}")
        evidence = [pkg_evidence, *live_evidence]
        data = sf.NfsServerState(pkg, folder.exists, wanted != (current or ""), bool(not_live))
        if not problems:
            return Finding.ok(f"{st.path} exported to {', '.join(clients)}", *evidence, data=data)
        return Finding.needs(
            "; ".join(problems),
            f"omwizard adds `{st.path} CLIENT({st.export_options})` per OM node to {EXPORTS} "
            "and runs `exportfs -ra`",
            *evidence,
            data=data,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        st = ctx.plan.storage
        clients = sf.client_addresses(ctx.plan, node)
        seen = finding.typed(sf.NfsServerState)
        await ensure_nfs_basics(ctx, node, seen)
        current = await ctx.read_text(node, EXPORTS)
        try:
            wanted = sf.exports_text(current, st.path, clients, st.export_options)
        except ExportsConflict as exc:
            raise RemoteError(node.name, str(exc), "fix that line by hand, then apply") from None
        if wanted == (current or ""):
            await ctx.change_command(
                node, ["exportfs", "-ra"], None, undo_text="nothing (the file was not changed)"
            )
            return
        # Journaled BEFORE the edit: rollback runs undos newest first, so the file is restored
        # first and this re-export runs after it, making the kernel's table match the file.
        await ctx.change_command(node, ["true"], ["exportfs", "-ra"])
        await edit_then_run(
            ctx,
            node,
            EXPORTS,
            lambda text: sf.exports_text(text, st.path, clients, st.export_options),
            ["exportfs", "-ra"],
            None,
            undo_text="the re-export runs on rollback after /etc/exports is restored",
            explain=sf.exportfs_remedy,
        )


# -- nfs-client --------------------------------------------------------------------------------


class NfsClientStep(StorageStep):
    reads = frozenset({R.DATA_DIR, R.NFS_EXPORTS, R.NFS_MOUNT, R.PACKAGES, R.FIREWALL})
    writes = frozenset({R.DATA_DIR, R.NFS_MOUNT, R.PACKAGES})
    skip_when = (nfs_only, only_om, not_storage_server)
    facts = (sf.NFS_CLIENT_PACKAGE, sf.DATA_FOLDER, sf.DATA_MOUNT)
    files = (sf.FSTAB_FILE,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        st = ctx.plan.storage
        server = ctx.plan.storage_node
        assert server is not None
        source = f"{server.address}:{st.path}"
        line = sf.client_line(ctx.plan)
        pkg = await ctx.fact(node, sf.NFS_CLIENT_PACKAGE)
        folder = await ctx.fact(node, sf.DATA_FOLDER)
        fstab = await ctx.read_text(node, FSTAB)
        mount = await ctx.fact(node, sf.DATA_MOUNT)
        verdict = sf.mount_verdict(mount, source)
        evidence = [await ctx.fact_evidence(node, sf.NFS_CLIENT_PACKAGE),
                    await ctx.fact_evidence(node, sf.DATA_MOUNT)]
        if verdict == "other":
            assert mount is not None
            return Finding.failed(
                f"{st.path} already has another file system mounted: {mount.source} "
                f"({mount.fstype})",
                "if that already is the shared folder, set storage.kind: existing; otherwise "
                f"unmount it (and remove it from {FSTAB}) before omwizard mounts {source}",
                *evidence,
            )
        try:
            wanted = fstab_ensure(fstab or "", line)
        except FstabConflict as exc:
            return Finding.failed(
                str(exc),
                f"remove or fix that line in {FSTAB} on {node.name} (omwizard writes `{line}`)",
                *evidence,
            )
        problems = []
        if not pkg.installed:
            problems.append(f"package {pkg.name or 'nfs-common'} is not installed")
        if not folder.exists:
            problems.append(f"mount point {st.path} does not exist")
        if wanted != (fstab or ""):
            problems.append(f"{FSTAB} lacks `{line}`")
        if verdict == "absent":
            problems.append(f"{source} is not mounted at {st.path}")
            if folder.exists:
                hidden = await ctx.run(
                    node, f"find {shlex.quote(st.path)} -mindepth 1 -maxdepth 1 | head -n 3"
                )
                if hidden.stdout.strip():
                    return Finding.failed(
                        f"{st.path} on this node holds files the NFS mount would hide: "
                        + ", ".join(hidden.stdout.split()),
                        f"move them to the server's {st.path} (they are this node's OM data), "
                        "empty the folder, then run apply",
                        *evidence,
                        hidden.evidence(),
                    )
        data = sf.NfsClientState(pkg, folder.exists, wanted != (fstab or ""), verdict == "ok")
        if not problems:
            fstype = mount.fstype if mount is not None else "?"
            return Finding.ok(f"{source} mounted at {st.path} ({fstype})", *evidence, data=data)
        return Finding.needs(
            "; ".join(problems),
            f"omwizard adds `{line}` to {FSTAB} and runs `mount {st.path}`",
            *evidence,
            data=data,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        st = ctx.plan.storage
        server = ctx.plan.storage_node
        assert server is not None
        line = sf.client_line(ctx.plan)
        seen = finding.typed(sf.NfsClientState)
        await ensure_nfs_basics(ctx, node, seen)
        mount = ["timeout", str(MOUNT_TIMEOUT), "mount", st.path]
        umount = ["umount", st.path]
        if not seen.edit:
            if not seen.mounted:
                await ctx.change_command(
                    node, mount, umount, undo_ok_text=("not mounted",),
                    timeout=MOUNT_TIMEOUT + 30,
                    remedy=sf.mount_remedy("", server.address),
                )
            return

        def explain(message: str) -> str:
            return sf.mount_remedy(message, server.address)

        def add_line(text: str | None) -> str:
            return fstab_ensure(text or "", line)

        await edit_then_run(
            ctx, node, FSTAB, add_line, mount, umount,
            undo_ok_text=("not mounted",), timeout=MOUNT_TIMEOUT + 30, explain=explain,
        )


# -- shared ------------------------------------------------------------------------------------


class SharedStep(StorageStep):
    reads = frozenset({R.DATA_DIR, R.NFS_EXPORTS, R.NFS_MOUNT, R.FIREWALL, R.LINKS})
    cluster_wide = True
    only_om = True
    # The OM user and its numbers (sf.OM_USER) are read by ctx.fact, not declared here: a
    # declared fact makes the engine wait for it before check_all, and the proof (which
    # resolves the user in its own command) is to run while the gather does. data-dir
    # declares it, so a run with both reads it once, in the gather; alone, it is read beside
    # the proof.

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        path = ctx.plan.storage.path
        info: dict[str, tuple | Finding] = {}
        problems: dict[str, list[str]] = {n.name: [] for n in nodes}
        remedies: dict[str, list[str]] = {n.name: [] for n in nodes}
        evidence: dict[str, list[str]] = {n.name: [] for n in nodes}
        # The file proof's own problems come after the uid/gid ones, as they always did.
        file_problems: dict[str, list[str]] = {n.name: [] for n in nodes}
        file_remedies: dict[str, list[str]] = {n.name: [] for n in nodes}
        if len(nodes) < 2:
            info[nodes[0].name] = await _known_ids(ctx, nodes[0])
        else:
            await _probe_file(ctx, nodes, info, path, file_problems, file_remedies, evidence)
        for name, got in info.items():
            if isinstance(got, Finding):  # a RemoteError on that node
                problems[name].append(got.detail)
                remedies[name].append(got.remedy)

        ids = {n: (g[2], g[3]) for n, g in info.items() if not isinstance(g, Finding)}
        server = ctx.plan.storage_node
        verdict = sf.id_verdict(ids, prefer=server.name if server else None)
        for name, have in verdict.wrong.items():
            user, group = info[name][0], info[name][1]  # type: ignore[index]
            if verdict.reference is None:
                problems[name].append(f"the OM user {user} has no uid/gid here")
                continue
            want = verdict.reference
            problems[name].append(
                f"{user}:{group} is {have[0]}:{have[1]} here, {want[0]}:{want[1]} on the "
                "other nodes (NFS compares numbers: files would belong to someone else)"
            )
            fix = "; ".join(sf.id_fix(user, group, have, want))
            remedies[name].append(f"with OpenMeetings stopped on {name}, run: {fix}")
        for node in nodes:
            problems[node.name] += file_problems[node.name]
            remedies[node.name] += file_remedies[node.name]

        if len(nodes) < 2:
            only = nodes[0].name
            if not problems[only]:
                return {only: Finding.skipped("select two or more OM nodes to prove sharing")}

        out = {}
        for node in nodes:
            name = node.name
            if problems[name]:
                out[name] = Finding.failed(
                    "; ".join(problems[name]), " ".join(dict.fromkeys(remedies[name])),
                    *evidence[name],
                )
            else:
                user, group, uid, gid = info[name][:4]  # type: ignore[index]
                out[name] = Finding.ok(
                    f"{path} shared: a file written on {nodes[0].name} is read here; "
                    f"{user}:{group} is {uid}:{gid}",
                    *evidence[name],
                )
        return out


async def _known_ids(
    ctx: StepContext, node: Node
) -> tuple[str, str, int | None, int | None] | Finding:
    """The OM user, its group and their numbers here (a declared fact), or why not known."""
    try:
        who = await ctx.fact(node, sf.OM_USER)
    except RemoteError as exc:
        return Finding.failed(exc.message, exc.remedy)
    return who.user, who.group, who.uid, who.gid


async def _probe_file(
    ctx: StepContext,
    nodes: list[Node],
    info: dict,
    path: str,
    problems: dict[str, list[str]],
    remedies: dict[str, list[str]],
    evidence: dict[str, list[str]],
) -> None:
    """Write a uniquely named file on the first node, read it on every other, remove it:
    every node in one command, all at once (the writer writes as the OM user its shell
    resolves, keeps the file while the others look for it, removes it; each reader looks
    until it sees it or the looks end). The proof needs nothing read before it: it runs
    while the run's gather reads every node's OM user and numbers (a declared fact).

    info gets every node's (user, group, uid, gid) or Finding.
    """
    writer = nodes[0]
    token = uuid.uuid4().hex
    probe = f"{path.rstrip('/')}/.omwizard-shared-{token}"
    write = sf.shared_write_resolving(ctx.plan.cluster.om_home, token, probe)
    parts: dict[str, dict[str, str]] = {
        writer.name: {"write": write, "remove": sf.shared_hold_command(probe)}
    }
    for node in nodes[1:]:
        parts[node.name] = {"cat": sf.shared_read_command(probe)}

    async def run(node: Node) -> dict[str, RunResult] | Finding:
        try:
            return await ctx.run_parts(node, parts[node.name], timeout=SHARED_TIMEOUT)
        except RemoteError as exc:
            return Finding.failed(exc.message, exc.remedy)

    runs, ids = await asyncio.gather(asyncio.gather(*(run(n) for n in nodes)),
                                     asyncio.gather(*(_known_ids(ctx, n) for n in nodes)))
    for node, known in zip(nodes, ids, strict=True):
        info[node.name] = known
    known_writer = info[writer.name]
    user = known_writer[0] if isinstance(known_writer, tuple) else "(unknown)"
    done = dict(zip([n.name for n in nodes], runs, strict=True))
    wrote_run = done[writer.name]
    if isinstance(wrote_run, Finding):  # the writer's node failed (check_all reports info's)
        if info.setdefault(writer.name, wrote_run) is not wrote_run:
            problems[writer.name].append(wrote_run.detail)
            remedies[writer.name].append(wrote_run.remedy)
    else:
        evidence[writer.name].append(wrote_run["write"].evidence())
    if isinstance(wrote_run, Finding) or not wrote_run["write"].ok:
        if not isinstance(wrote_run, Finding):
            problems[writer.name].append(f"the OM user {user} cannot write in {path}")
            remedies[writer.name].append(
                "run apply for storage.data-dir (the folder and its owner) and check the mount"
            )
        for other in nodes[1:]:
            problems[other.name].append(
                f"not proved: the test file could not be written on {writer.name}"
            )
            if isinstance(done[other.name], Finding):
                info.setdefault(other.name, done[other.name])
        return
    for node in nodes[1:]:
        seen_run = done[node.name]
        if isinstance(seen_run, Finding):
            if info.setdefault(node.name, seen_run) is not seen_run:
                problems[node.name].append(seen_run.detail)  # the read failed (as well)
                remedies[node.name].append(seen_run.remedy)
            continue
        seen = seen_run["cat"]
        evidence[node.name].append(seen.evidence())
        if seen.stdout != token:
            problems[node.name].append(
                f"{path} is not shared with {writer.name}: the file written there is not here"
            )
            remedies[node.name].append(
                "storage.kind nfs: run apply for storage.nfs-client (the mount); kind "
                f"existing: mount the shared folder at {path} on this node"
            )


STEPS: list[Step] = [
    DataDirStep("data-dir", "OM data dir", DOC_DATA_DIR),
    NfsServerStep("nfs-server", "NFS server exports the folder", DOC_SERVER),
    NfsClientStep("nfs-client", "OM nodes mount the folder", DOC_CLIENT),
    SharedStep("shared", "The folder is shared", DOC_SHARED),
]
