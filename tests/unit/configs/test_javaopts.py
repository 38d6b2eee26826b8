"""JAVA_OPTS from OpenMeetings' own systemd units, drop-ins and Tomcat setenv.sh."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omwizard.configs.javaopts import (
    SERIALIZATION_OPTS,
    dropin_with_opts,
    effective_java_opts,
    missing_opts,
    parse_unit_java_opts,
    setenv_with_opts,
)
from tests.unit.configs.releases import OM

SERIAL = list(SERIALIZATION_OPTS)
DATA_DIR = "-DDATA_DIR=/opt/omdata"
BASE = ["-Djava.awt.headless=true", "-Djava.security.egd=file:/dev/./urandom"]


def unit(version: str) -> str:
    return (OM / version / "openmeetings.service").read_text()


@pytest.mark.parametrize("version", ["5.0.0", "6.3.0", "7.0.0"])
def test_old_units_lack_the_serialization_lists(version: str) -> None:
    opts = parse_unit_java_opts(unit(version))
    assert opts == BASE  # JDK_JAVA_OPTIONS and CATALINA_OPTS are other variables
    assert missing_opts(opts, SERIAL) == SERIAL
    assert missing_opts(opts, [DATA_DIR]) == [DATA_DIR]


@pytest.mark.parametrize("version", ["8.1.0", "9.1.0"])
def test_new_units_have_them(version: str) -> None:
    opts = parse_unit_java_opts(unit(version))
    assert opts == BASE + SERIAL
    assert missing_opts(opts, SERIAL) == []
    assert effective_java_opts(unit(version), None, None) == opts


def test_missing_opts_by_key_last_wins() -> None:
    current = ["-DDATA_DIR=/old", "-Xmx1G", "-DDATA_DIR=/opt/omdata"]
    assert missing_opts(current, [DATA_DIR, "-Xmx1G"]) == []
    assert missing_opts(list(reversed(current)), [DATA_DIR]) == [DATA_DIR]
    assert missing_opts(["-Dopenjpa.serialization.class.blacklist=x"], SERIAL[:1]) == SERIAL[:1]


def test_unit_environment_syntax() -> None:
    text = (
        "[Unit]\nEnvironment='JAVA_OPTS=-Dunit.section=ignored'\n"
        "[Service]\n"
        "Environment=JAVA_OPTS=-Da=1\n"
        "# Environment='JAVA_OPTS=-Dcommented=1'\n"
        'Environment="OTHER=x y" "JAVA_OPTS=-Db=2 -Dc=\\"3\\""\n'
        "Environment=A=1 \\\n  'JAVA_OPTS=-Dd=4  -De=5'\n"
    )
    assert parse_unit_java_opts(text) == ["-Dd=4", "-De=5"]
    assert parse_unit_java_opts(text + "Environment=\n") == []  # empty resets
    assert parse_unit_java_opts("[Service]\nEnvironment=JAVA_OPTS=-Dx=1\n") == ["-Dx=1"]


def test_dropin_replaces_unit_value_so_it_carries_the_unit_tokens() -> None:
    base_unit = unit("5.0.0")
    wanted = SERIAL + [DATA_DIR]
    dropin = dropin_with_opts(None, effective_java_opts(base_unit, None, None), wanted)
    assert dropin.count("[Service]") == 1
    assert "Environment='JAVA_OPTS=" + " ".join(BASE + wanted) + "'\n" in dropin
    effective = effective_java_opts(base_unit, dropin, None)
    assert effective == BASE + wanted
    assert missing_opts(effective, wanted) == []
    # a second run changes nothing
    assert dropin_with_opts(dropin, effective, wanted) == dropin
    # another value for a key is replaced in place, never duplicated
    moved = dropin_with_opts(dropin, effective, ["-DDATA_DIR=/srv/om"])
    assert effective_java_opts(base_unit, moved, None) == BASE + SERIAL + ["-DDATA_DIR=/srv/om"]
    assert moved.count("DATA_DIR") == 1


def test_dropin_keeps_other_settings() -> None:
    existing = (
        "# local tuning\n[Service]\nLimitNOFILE=65536\n"
        'Environment="OTHER=1" "JAVA_OPTS=-Dold=1 -DDATA_DIR=/x"\n'
        "TimeoutStartSec=300\n\n[Unit]\nDescription=tuned\n"
    )
    base = effective_java_opts(unit("9.1.0"), existing, None)
    assert base == ["-Dold=1", "-DDATA_DIR=/x"]
    new = dropin_with_opts(existing, base, [DATA_DIR])
    assert new.splitlines() == [
        "# local tuning",
        "[Service]",
        "LimitNOFILE=65536",
        "Environment=OTHER=1",
        "Environment='JAVA_OPTS=-Dold=1 -DDATA_DIR=/opt/omdata'",
        "TimeoutStartSec=300",
        "",
        "[Unit]",
        "Description=tuned",
    ]
    appended = dropin_with_opts("[Service]\nLimitNOFILE=1\n\n[Unit]\n", BASE, [DATA_DIR])
    assert appended.splitlines()[:3] == [
        "[Service]", "LimitNOFILE=1", f"Environment='JAVA_OPTS={' '.join(BASE)} {DATA_DIR}'",
    ]  # fmt: skip


def test_setenv_create_and_append() -> None:
    created = setenv_with_opts(None, SERIAL)
    assert created.startswith("#!/bin/sh\n")
    assert created.endswith('JAVA_OPTS="$JAVA_OPTS ' + " ".join(SERIAL) + '"\n')
    assert effective_java_opts(unit("6.3.0"), None, created) == BASE + SERIAL
    assert setenv_with_opts(created, SERIAL) == created


def test_setenv_keeps_everything_else_and_replaces_same_key() -> None:
    existing = (
        '#!/bin/bash\n# site settings\nCATALINA_OPTS="$CATALINA_OPTS -DDATA_DIR=/cat"\n'
        'export JAVA_OPTS="$JAVA_OPTS -Xss2m -DDATA_DIR=/old"\n'
        'JAVA_OPTS="$JAVA_OPTS -DDATA_DIR=/older2"'
    )
    new = setenv_with_opts(existing, [DATA_DIR] + SERIAL)
    lines = new.splitlines()
    assert lines[:3] == existing.splitlines()[:3]  # CATALINA_OPTS untouched
    assert lines[3] == 'export JAVA_OPTS="$JAVA_OPTS -Xss2m -DDATA_DIR=/opt/omdata"'
    assert lines[4] == 'JAVA_OPTS="$JAVA_OPTS -DDATA_DIR=/opt/omdata"'
    assert lines[5] == 'JAVA_OPTS="$JAVA_OPTS ' + " ".join(SERIAL) + '"'
    assert len(lines) == 6
    effective = effective_java_opts(unit("7.0.0"), None, new)
    assert missing_opts(effective, [DATA_DIR] + SERIAL) == []
    assert setenv_with_opts(new, [DATA_DIR] + SERIAL) == new


def test_same_key_twice_in_wanted_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        dropin_with_opts(None, BASE, ["-Da=1", "-Da=2"])


def test_setenv_assignment_without_append_resets() -> None:
    text = 'JAVA_OPTS="-Donly=1"\n'
    assert effective_java_opts(unit("9.1.0"), None, text) == ["-Donly=1"]


@pytest.mark.parametrize(
    "bad", ["-Dx=a b", "-Dx='a'", '-Dx="a"', "-Dx=$HOME", "-Dx=`id`", "-Dx=a\nb", "-Dx=a;b",
            "-Dx=%h", "-Dx=a\\b", ""],
)  # fmt: skip
def test_unsafe_values_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        dropin_with_opts(None, BASE, [bad])
    with pytest.raises(ValueError):
        setenv_with_opts(None, [bad])


_KEY = st.from_regex(r"[a-z]{1,6}", fullmatch=True)
_VALUE = st.from_regex(r"[a-z0-9/.]{0,6}", fullmatch=True)


@given(
    st.lists(st.tuples(_KEY, _VALUE).map(lambda kv: f"-D{kv[0]}={kv[1]}"), max_size=6),
    st.dictionaries(_KEY, _VALUE, max_size=4).map(lambda d: [f"-D{k}={v}" for k, v in d.items()]),
)
def test_dropin_then_effective_has_wanted_and_no_duplicate_keys(
    base: list[str], wanted: list[str]
) -> None:
    unit_text = "[Service]\nEnvironment='JAVA_OPTS=" + " ".join(base) + "'\n"
    dropin = dropin_with_opts(None, effective_java_opts(unit_text, None, None), wanted)
    effective = effective_java_opts(unit_text, dropin, None)
    assert missing_opts(effective, wanted) == []
    keys = [t.partition("=")[0] for t in effective]
    assert len(keys) == len(set(keys))
