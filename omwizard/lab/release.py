"""An OpenMeetings release for a rehearsal: downloaded once, checked, kept small in the cache.

An installed omwizard carries no OpenMeetings files. `omwizard rehearse` fetches the official
binary release from the Apache distribution archive (or a mirror), compares its SHA-512 with
the published one before opening it, and keeps only what a rehearsal node reads
(hazelcast.xml, the persistence templates, the systemd unit: a few hundred kB of a ~200 MB
archive) in ``$XDG_CACHE_HOME/omwizard/openmeetings/<version>/``. The next rehearsal finds it
there without a network. An operator's own archive (``--om-files X.tar.gz``) is unpacked the
same way. Names, addresses and checksum formats are in omwizard.om.release (pure).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from omwizard.om.layout import version_from_jars, version_text
from omwizard.om.release import (
    ARCHIVE_SUFFIXES,
    DEFAULT_BASE,
    MIRROR_ENV,
    archive_name,
    check_base,
    is_version,
    jar_name,
    parse_sha512,
    release_urls,
    version_from_name,
    wanted,
)

from .omfiles import OmFiles, OmFilesError, operator_files

Progress = Callable[[int, int | None], None]  # bytes so far, total (None: not announced)

RECORD = "release.json"  # in a cached tree: where it came from; its presence means complete
MEMBER_LIMIT = 8 << 20  # no file a rehearsal reads is near this; a bigger one is not OM's
CHUNK = 1 << 16


class ReleaseUnavailable(OmFilesError):
    """The release is neither cached nor downloadable (offline, missing on the mirror)."""


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CACHE_HOME/omwizard (default ~/.cache/omwizard), as the XDG spec says."""
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "omwizard"


def release_dir(version: str, env: Mapping[str, str] = os.environ) -> Path:
    return cache_root(env) / "openmeetings" / version


def mirror(option: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The dist base to download from: --om-mirror, else $OMW_OM_MIRROR, else Apache's archive."""
    base = option or env.get(MIRROR_ENV, "").strip() or DEFAULT_BASE
    problem = check_base(base)
    if problem:
        where = "--om-mirror" if option else MIRROR_ENV
        raise OmFilesError(f"{where}: {problem}")
    return base


def cached_files(version: str) -> OmFiles | None:
    """The cached files of a release, or None when it is not (completely) cached."""
    path = release_dir(version)
    if not (path / RECORD).is_file():
        return None
    return operator_files(path, version)


def fetch_release(version: str, base: str, progress: Progress | None = None,
                  timeout: float = 30) -> OmFiles:
    """The release's files: from the cache, else downloaded from `base`, checked, cached."""
    if not is_version(version):
        raise OmFilesError(f"--om-version {version!r} is not an OpenMeetings release number: "
                           "write it like 9.1.0")
    found = cached_files(version)
    if found is not None:
        return found
    url, sha_url = release_urls(base, version)
    help_ = ("pass --om-files with an OpenMeetings release archive (.tar.gz/.zip) or folder, or "
             f"name a reachable mirror with --om-mirror URL (or {MIRROR_ENV}=URL)")
    try:
        expected = parse_sha512(_read_small(sha_url, timeout))
    except ValueError as exc:
        raise ReleaseUnavailable(f"{sha_url} is not a SHA-512 checksum file ({exc}): "
                                 f"{help_}") from exc
    except (OSError, urllib.error.URLError) as exc:
        raise ReleaseUnavailable(f"OpenMeetings {version} is not in the cache "
                                 f"({release_dir(version)}) and {sha_url} cannot be read "
                                 f"({_reason(exc)}): {help_}") from exc
    root = cache_root()
    made = _makedirs(root / "downloads")
    part = root / "downloads" / (archive_name(version) + f".{os.getpid()}.part")
    try:
        try:
            digest = _download(url, part, progress, timeout)
        except (OSError, urllib.error.URLError) as exc:
            raise ReleaseUnavailable(f"cannot download {url} ({_reason(exc)}): {help_}") from exc
        if digest != expected:
            raise OmFilesError(
                f"the SHA-512 of {url} does not match {sha_url}: the download is damaged or "
                "was tampered with; it was deleted unopened. Try again, or another mirror "
                "(--om-mirror)")
        return unpack(part, version, release_dir(version),
                      {"version": version, "url": url, "sha512": digest})
    finally:
        part.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: nothing else of ours is there


def archive_files(archive: Path, version: str | None) -> OmFiles:
    """An operator's release archive (--om-files X.tar.gz/.zip): checked against a .sha512
    beside it when there is one, unpacked once into the cache (keyed by its checksum)."""
    archive = archive.expanduser()
    if not archive.is_file():
        raise OmFilesError(f"--om-files {archive}: no such file")
    digest = _sha512_file(archive)
    beside = archive.with_name(archive.name + ".sha512")
    if beside.is_file():
        try:
            published = parse_sha512(beside.read_text(errors="replace"))
        except ValueError as exc:
            raise OmFilesError(f"{beside} is not a SHA-512 checksum file ({exc}): fix or "
                               "remove it") from exc
        if published != digest:
            raise OmFilesError(f"the SHA-512 of {archive} does not match {beside}: the archive "
                               "is damaged or was tampered with; download it again")
    dest = cache_root() / "archives" / digest[:32]
    if not (dest / RECORD).is_file():
        return unpack(archive, version, dest, {"archive": str(archive), "sha512": digest})
    recorded = _recorded_version(dest)
    if recorded and version and recorded != version:
        raise OmFilesError(f"--om-files {archive} is OpenMeetings {recorded} but --om-version "
                           f"is {version}: drop --om-version or make them agree")
    return operator_files(dest, recorded or version)


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, version: str | None, dest: Path, record: dict[str, str]) -> OmFiles:
    """Copy the files a rehearsal needs out of a (checked) archive into `dest`, atomically:
    a half-unpacked release is never seen as cached."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        jars: list[str] = []
        kept = 0
        for name, size, opener in _members(archive):
            jar = jar_name(name)
            if jar:
                jars.append(jar)
                continue
            rel = wanted(name)
            if rel is None:
                continue
            if size > MEMBER_LIMIT:
                raise OmFilesError(f"{archive}: {name} is {size} bytes, too big to be "
                                   "OpenMeetings' own file: use an unmodified release")
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with opener() as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            kept += 1
        detected = version_text(v) if (v := version_from_jars(jars)) else None
        named = version_from_name(archive.name) or record.get("version")
        found = detected or version or named
        if detected and version and detected != version:
            raise OmFilesError(f"{archive} is OpenMeetings {detected} (its jars say so) but "
                               f"--om-version is {version}: drop --om-version or make them agree")
        if not found:
            raise OmFilesError(f"{archive}: its version is not known (no openmeetings-web-*.jar "
                               "in it and not named apache-openmeetings-X.Y.Z): add "
                               "--om-version X.Y.Z")
        if not kept:
            raise OmFilesError(f"{archive} holds no webapps/openmeetings/WEB-INF/classes/"
                               "hazelcast.xml: it is not an OpenMeetings binary release; use "
                               f"{archive_name(found)} (not the -src archive)")
        files = operator_files(stage, found)  # checks hazelcast.xml and the templates
        (stage / RECORD).write_text(json.dumps({**record, "version": found}) + "\n")
        stage.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(stage, dest)
        return _moved(files, stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _moved(files: OmFiles, old: Path, new: Path) -> OmFiles:
    def move(p: Path) -> Path:
        return new / p.relative_to(old)

    return OmFiles(origin=new, version=files.version, hazelcast=move(files.hazelcast),
                   templates=tuple(move(t) for t in files.templates),
                   installed=move(files.installed),
                   unit=move(files.unit) if files.unit is not None else None)


def _recorded_version(dest: Path) -> str | None:
    try:
        return str(json.loads((dest / RECORD).read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _members(archive: Path) -> Iterator[tuple[str, int, Callable[[], IO[bytes]]]]:
    """(name, size, open) of every regular file in a .tar.gz or .zip, streamed in order."""
    try:
        if archive.name.lower().endswith(".zip") or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not info.is_dir():
                        yield info.filename, info.file_size, functools.partial(zf.open, info)
            return
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                if member.isreg():
                    yield member.name, member.size, functools.partial(_extracted, tf, member)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise OmFilesError(f"{archive} is not a readable .tar.gz or .zip archive ({exc}): "
                           "download it again") from exc


def _extracted(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    f = tf.extractfile(member)
    if f is None:
        raise OmFilesError(f"{member.name} cannot be read from the archive")
    return f


def _makedirs(path: Path) -> list[Path]:
    """mkdir -p, returning the folders it made (deepest first), to remove them on failure."""
    made: list[Path] = []
    p = path
    while not p.exists():
        made.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return made


def _open(url: str, timeout: float) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "omwizard"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s)/file only)


def _read_small(url: str, timeout: float) -> str:
    with _open(url, timeout) as response:
        return response.read(1 << 16).decode("ascii", errors="replace")


def _download(url: str, part: Path, progress: Progress | None, timeout: float) -> str:
    """Stream `url` into `part`, hashing as it comes; the hex SHA-512."""
    digest = hashlib.sha512()
    with _open(url, timeout) as response, open(part, "wb") as out:
        length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
        total = int(length) if length and str(length).isdigit() else None
        done = 0
        if progress:
            progress(0, total)
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _sha512_file(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
