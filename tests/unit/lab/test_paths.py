"""Paths handed into lab nodes must be ones a node sees (its /home, /tmp, /opt, /run differ)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from omwizard.lab import hazelcast


def test_jars_in_node_private_folders_are_copied_into_the_workdir(tmp_path: Path) -> None:
    assert tmp_path.is_relative_to("/tmp")  # pytest's tmp_path: node-private, like /home
    private = tmp_path / "repo" / "hazelcast-5.5.0.jar"
    private.parent.mkdir()
    private.write_bytes(b"PK jar")
    public_dir = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        public = public_dir / "slf4j-api.jar"
        public.write_bytes(b"PK other")
        workdir = public_dir / "lab"
        workdir.mkdir()
        out = hazelcast.visible_in_nodes([private, public], workdir)
        assert out == [workdir / "jars" / "hazelcast-5.5.0.jar", public]
        assert out[0].read_bytes() == b"PK jar"
        assert hazelcast.visible_in_nodes([private], workdir) == out[:1]  # copied once
    finally:
        shutil.rmtree(public_dir)
