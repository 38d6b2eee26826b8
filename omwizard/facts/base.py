"""The two shapes every fact module uses: typed step data, and a declared fact.

`StepData` is what a check hands on (to its apply, to a later step, to the export, to a
screen) instead of a sentence: a frozen dataclass with a `kind` that round-trips through JSON
(`to_json` / `StepData.from_json`), so results saved in the state keep it.

`Fact` is pyinfra's idea of a fact: a read-only shell command plus a pure parser of its
output. Steps declare the facts they need (`Step.facts`); the step context gathers each one
once per node per run (`await ctx.fact(node, OM_INSTALL)`), several of a node in one round
trip. Nothing here imports the engine or the remote code, so facts stay pure and testable
from captured outputs.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

T = TypeVar("T")


@dataclass(frozen=True)
class StepData:
    """Base of a check's typed payload; each subclass sets a unique `kind` and registers
    (a subclass without its own kind is a shared base, not saved by itself)."""

    kind: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type[StepData]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if not kind:  # a shared base of several kinds: never saved itself
            return
        known = StepData._kinds.get(kind)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"step data kind {kind!r} used by {known.__name__} and {cls.__name__}")
        StepData._kinds[kind] = cls

    def to_json(self) -> dict[str, Any]:
        """{"kind": ..., field: value}; nested dataclasses as mappings, tuples as lists."""
        return {"kind": self.kind, **_plain(dataclasses.asdict(self))}

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> StepData | None:
        """The typed object again; None for no data or a kind this omwizard does not know."""
        if not data or not isinstance(data, dict):
            return None
        kind = str(data.get("kind", ""))
        if kind not in StepData._kinds:
            _load_fact_modules()
        cls = StepData._kinds.get(kind)
        if cls is None:
            return None
        revived: StepData = _revive(cls, data)
        return revived


def _load_fact_modules() -> None:
    """Every module of this package (they define the step data), so a saved kind finds its
    class; a new fact module needs no list kept here. Importing again costs nothing."""
    package = importlib.import_module(__package__ or "omwizard.facts")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _revive(tp: Any, value: Any) -> Any:
    """value (from JSON) as the annotated type: dataclasses, tuples, optionals, lists."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _revive(arg, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: _revive(hints.get(k, Any), v) for k, v in value.items() if k in names})
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_revive(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_revive(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_revive(arg, v) for v in value]
    return value


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A read-only command and the pure parser of its stdout; gathered once per node per run.

    name: a word, unique among facts (the part name when a node's facts share a round trip).
    command(plan, node): the shell text. sudo: run through sudo. stable: no change omwizard
    makes alters it (the installed OpenMeetings version), so it survives the changes of a run.
    """

    name: str
    command: Callable[[Plan, Node], str]
    parse: Callable[[str], T]
    sudo: bool = True
    stable: bool = False



@dataclass(frozen=True)
class Files:
    """Files a check reads (`ctx.read_texts`), declared like facts (`Step.files`) so the engine
    reads them in the node's facts round trip; the check then finds them cached.

    name: a word naming what they are; paths(plan, node): the absolute paths.
    """

    name: str
    paths: Callable[[Plan, Node], list[str]]
