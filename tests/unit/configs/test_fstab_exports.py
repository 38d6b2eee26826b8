"""/etc/fstab and /etc/exports line transforms on files as real systems have them."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omwizard.configs.exports import (
    ExportsConflict,
    exports_conflict,
    exports_ensure,
    exports_has,
    exports_line,
    exports_remove,
)
from omwizard.configs.fstab import (
    FstabConflict,
    fstab_conflict,
    fstab_ensure,
    fstab_find,
    fstab_has,
    fstab_line,
    fstab_remove,
)

# Debian 12's installer output, with the operator's own additions (tabs, blank lines).
DEBIAN_FSTAB = """\
# /etc/fstab: static file system information.
#
# Use 'blkid' to print the universally unique identifier for a
# device; this may be used with UUID= as a more robust way to name devices
# that works even if disks are added and removed. See fstab(5).
#
# systemd generates mount units based on this file, see systemd.mount(5).
# Please run 'systemctl daemon-reload' after you make changes here.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
# / was on /dev/vda1 during installation
UUID=6a0c1f5e-2b9e-4f0e-9d77-3d1b2c4a5e6f /               ext4    errors=remount-ro 0       1
# swap was on /dev/vda5 during installation
UUID=0d4e8f3a-1c2b-4d5e-8f9a-0b1c2d3e4f5a none            swap    sw              0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0

#backup disk
LABEL=backup\t/mnt/backup\text4\tdefaults,nofail\t0\t2
"""

# Debian's nfs-kernel-server default file plus an operator's export.
DEBIAN_EXPORTS = """\
# /etc/exports: the access control list for filesystems which may be exported
#\t\tto NFS clients.  See exports(5).
#
# Example for NFSv2 and NFSv3:
# /srv/homes       hostname1(rw,sync,no_subtree_check) hostname2(ro,sync,no_subtree_check)
#
# Example for NFSv4:
# /srv/nfs4        gss/krb5i(rw,sync,fsid=0,crossmnt,no_subtree_check)
# /srv/nfs4/homes  gss/krb5i(rw,sync,no_subtree_check)
#
/srv/backup\t192.168.7.0/24(ro,sync,no_subtree_check)
"""

DOC_FSTAB = "10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr"
OPTS = "rw,sync,no_subtree_check,no_root_squash"


def diff(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line[:3] in ("---", "+++") or line.startswith("@@"):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


# ------------------------------------------------------------------ fstab


def test_fstab_line_is_the_documentation_line() -> None:
    assert fstab_line("10.1.1.1:/opt/omdata", "/opt/omdata", "nfs", "timeo=50,hard,intr") == (
        DOC_FSTAB
    )


@pytest.mark.parametrize(
    "args",
    [
        ("10.1.1.1:opt", "/opt/omdata", "nfs", "hard"),
        ("10.1.1.1:/opt/omdata", "opt/omdata", "nfs", "hard"),
        ("10.1.1.1:/opt/om data", "/opt/omdata", "nfs", "hard"),
        ("10.1.1.1:/opt/omdata", "/opt/omdata", "nfs", "hard;reboot"),
        ("10.1.1.1:/opt/omdata", "/opt/omdata", "nfs", "Hard"),
        ("10.1.1.1;id:/opt/omdata", "/opt/omdata", "nfs", "hard"),
    ],
)
def test_fstab_line_validates(args: tuple[str, str, str, str]) -> None:
    with pytest.raises(ValueError):
        fstab_line(*args)


def test_fstab_ensure_appends_once_and_remove_restores() -> None:
    new = fstab_ensure(DEBIAN_FSTAB, DOC_FSTAB)
    assert diff(DEBIAN_FSTAB, new) == ([], [DOC_FSTAB])
    assert new.startswith(DEBIAN_FSTAB)
    assert fstab_ensure(new, DOC_FSTAB) == new
    assert fstab_has(new, DOC_FSTAB)
    assert fstab_find(new, "/opt/omdata/").source == "10.1.1.1:/opt/omdata"  # type: ignore[union-attr]
    assert fstab_remove(new, DOC_FSTAB) == DEBIAN_FSTAB


def test_fstab_no_trailing_newline_and_empty() -> None:
    text = DEBIAN_FSTAB.rstrip("\n")
    new = fstab_ensure(text, DOC_FSTAB)
    assert new == text + "\n" + DOC_FSTAB + "\n"
    assert fstab_ensure("", DOC_FSTAB) == DOC_FSTAB + "\n"
    assert fstab_remove(DOC_FSTAB + "\n", DOC_FSTAB) == ""


@pytest.mark.parametrize(
    "existing",
    [
        "10.1.1.1:/opt/omdata\t/opt/omdata\tnfs\tintr,timeo=50,hard\t0\t0",
        "  10.1.1.1:/opt/omdata/   /opt/omdata/  nfs  hard,intr,timeo=50",
        "10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr,hard 0 0",
    ],
)
def test_fstab_equivalent_entry_is_recognised(existing: str) -> None:
    text = DEBIAN_FSTAB + existing + "\n"
    assert fstab_has(text, DOC_FSTAB)
    assert fstab_conflict(text, DOC_FSTAB) is None
    assert fstab_ensure(text, DOC_FSTAB) == text
    removed, added = diff(text, fstab_remove(text, DOC_FSTAB))
    assert removed == [existing] and added == []


@pytest.mark.parametrize(
    "other",
    [
        "10.1.1.9:/opt/omdata /opt/omdata nfs timeo=50,hard,intr",
        "10.1.1.1:/opt/omdata /opt/omdata nfs4 timeo=50,hard,intr",
        "10.1.1.1:/opt/omdata /opt/omdata nfs soft",
        "10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr 0 2",
    ],
)
def test_fstab_conflict_is_reported_not_added(other: str) -> None:
    text = DEBIAN_FSTAB + other + "\n"
    conflict = fstab_conflict(text, DOC_FSTAB)
    assert conflict is not None and conflict.raw == other
    with pytest.raises(FstabConflict) as info:
        fstab_ensure(text, DOC_FSTAB)
    assert info.value.entry.index == len(DEBIAN_FSTAB.splitlines())
    assert fstab_remove(text, DOC_FSTAB) == text  # not ours: left alone


def test_fstab_commented_entry_is_not_an_entry() -> None:
    text = DEBIAN_FSTAB + "#" + DOC_FSTAB + "\n"
    assert fstab_find(text, "/opt/omdata") is None
    new = fstab_ensure(text, DOC_FSTAB)
    assert diff(text, new) == ([], [DOC_FSTAB])
    assert fstab_remove(new, DOC_FSTAB) == text


# ------------------------------------------------------------------ exports


def test_exports_line_as_documented() -> None:
    assert exports_line("/opt/omdata", [("10.1.1.2", OPTS)]) == (
        "/opt/omdata 10.1.1.2(rw,sync,no_subtree_check,no_root_squash)"
    )
    assert exports_line("/opt/omdata", [("10.1.1.2", "rw"), ("10.1.1.3", "rw")]).splitlines() == [
        "/opt/omdata 10.1.1.2(rw)", "/opt/omdata 10.1.1.3(rw)",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "client", "options"),
    [("opt/omdata", "10.1.1.2", OPTS), ("/opt/om data", "10.1.1.2", OPTS),
     ("/opt/omdata", "10.1.1.2 *", OPTS), ("/opt/omdata", "10.1.1.2", "rw sync"),
     ("/opt/omdata", "10.1.1.2", "rw)(x")],
)  # fmt: skip
def test_exports_validates(path: str, client: str, options: str) -> None:
    with pytest.raises(ValueError):
        exports_line(path, [(client, options)])
    with pytest.raises(ValueError):
        exports_ensure(DEBIAN_EXPORTS, path, client, options)


def test_exports_ensure_one_line_per_client_and_remove() -> None:
    text = DEBIAN_EXPORTS
    for client in ("10.1.1.2", "10.1.1.3"):
        text = exports_ensure(text, "/opt/omdata", client, OPTS)
    assert diff(DEBIAN_EXPORTS, text) == ([], [
        "/opt/omdata 10.1.1.2(rw,sync,no_subtree_check,no_root_squash)",
        "/opt/omdata 10.1.1.3(rw,sync,no_subtree_check,no_root_squash)",
    ])  # fmt: skip
    assert exports_ensure(text, "/opt/omdata", "10.1.1.3", OPTS) == text
    assert exports_has(text, "/opt/omdata", "10.1.1.2", "no_root_squash,rw,no_subtree_check,sync")
    assert not exports_has(text, "/opt/omdata", "10.1.1.4", OPTS)
    assert not exports_has(text, "/srv/homes", "hostname1", "rw,sync,no_subtree_check")  # comment
    back = exports_remove(
        exports_remove(text, "/opt/omdata", "10.1.1.3"), "/opt/omdata", "10.1.1.2"
    )
    assert back == DEBIAN_EXPORTS


def test_exports_recognises_shared_line_other_order_and_defaults() -> None:
    line = "/opt/omdata/\t10.1.1.3(rw,sync) 10.1.1.2(no_root_squash,sync,rw,no_subtree_check)"
    text = DEBIAN_EXPORTS + line + "\n"
    assert exports_has(text, "/opt/omdata", "10.1.1.2", OPTS)
    assert exports_ensure(text, "/opt/omdata", "10.1.1.2", OPTS) == text
    removed, added = diff(text, exports_remove(text, "/opt/omdata", "10.1.1.2"))
    assert removed == [line] and added == ["/opt/omdata/\t10.1.1.3(rw,sync)"]
    defaults = DEBIAN_EXPORTS + f'"/opt/omdata" -{OPTS} 10.1.1.2\n'
    assert exports_has(defaults, "/opt/omdata", "10.1.1.2", OPTS)


def test_exports_continuation_lines() -> None:
    entry = f"/opt/omdata 10.1.1.3(rw,sync) \\\n    10.1.1.2({OPTS})\n"
    text = DEBIAN_EXPORTS + entry
    assert exports_has(text, "/opt/omdata", "10.1.1.2", OPTS)
    assert exports_remove(text, "/opt/omdata", "10.1.1.2") == (
        DEBIAN_EXPORTS + "/opt/omdata 10.1.1.3(rw,sync)\n"
    )
    only = DEBIAN_EXPORTS + "/opt/omdata \\\n  10.1.1.2(rw)\n"
    assert exports_remove(only, "/opt/omdata", "10.1.1.2") == DEBIAN_EXPORTS


def test_exports_conflict_and_no_trailing_newline() -> None:
    text = DEBIAN_EXPORTS + "/opt/omdata 10.1.1.2(ro,sync)"
    found = exports_conflict(text, "/opt/omdata", "10.1.1.2", OPTS)
    assert found is not None and found.options == ("ro", "sync")
    with pytest.raises(ExportsConflict):
        exports_ensure(text, "/opt/omdata", "10.1.1.2", OPTS)
    other = exports_ensure(text, "/opt/omdata", "10.1.1.3", OPTS)
    assert other == text + "\n/opt/omdata 10.1.1.3(" + OPTS + ")\n"


@given(st.permutations(OPTS.split(",")), st.sampled_from([" ", "\t", "  \t "]))
def test_exports_option_order_and_whitespace_never_matter(opts: list[str], gap: str) -> None:
    text = DEBIAN_EXPORTS + f"/opt/omdata{gap}10.1.1.2({','.join(opts)})\n"
    assert exports_has(text, "/opt/omdata", "10.1.1.2", OPTS)
    assert exports_ensure(text, "/opt/omdata", "10.1.1.2", OPTS) == text
    assert exports_remove(text, "/opt/omdata", "10.1.1.2") == DEBIAN_EXPORTS


@given(st.permutations(["timeo=50", "hard", "intr"]), st.sampled_from([" ", "\t", " \t  "]))
def test_fstab_option_order_and_whitespace_never_matter(opts: list[str], gap: str) -> None:
    line = gap.join(["10.1.1.1:/opt/omdata", "/opt/omdata", "nfs", ",".join(opts)])
    text = DEBIAN_FSTAB + line + "\n"
    assert fstab_ensure(text, DOC_FSTAB) == text
    assert fstab_remove(text, DOC_FSTAB) == DEBIAN_FSTAB
