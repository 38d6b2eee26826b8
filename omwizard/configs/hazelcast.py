"""OpenMeetings ``hazelcast.xml``: the clustering edits of the documentation, as pure text.

The documentation (Clustering.xml, "OM nodes configuration") asks, on every node: a unique
``instance-name``, the member attributes ``name`` (same value) and ``server.url``, removal of
the disabled ``<network><join>`` block and of ``hazelcast.discovery.enabled=false``, and the
commented ``<network>`` block un-commented with valid values. omwizard adds a ``cluster-name``
unique to the cluster (Hazelcast >= 4) so two clusters on one LAN never merge.

The file is an operator's file: the diff shown before writing must contain only the edited
lines. lxml re-serializes start tags, quoting and empty elements its own way, so the output is
rebuilt node by node from the *original text* wherever a node's tag, attributes, text or tail
did not change (source spans come from a small tokenizer run alongside lxml's parse). Nothing
here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from lxml import etree

NS = "http://www.hazelcast.com/schema/config"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DISCOVERY_PROPERTY = "hazelcast.discovery.enabled"
# join methods whose ``enabled`` attribute defaults to true when absent (Hazelcast's defaults)
_DEFAULT_ON = {"multicast"}
_SCHEMA_RE = re.compile(r"hazelcast-config-(\d+)\.(\d+)\.xsd")


@dataclass(frozen=True)
class HazelcastSettings:
    """What one OM node's hazelcast.xml must say, taken from the plan."""

    instance_name: str
    server_url: str | None
    cluster_name: str | None
    join: str  # "multicast" | "tcp-ip"
    multicast_group: str = "224.0.0.0"
    multicast_port: int = 54327
    multicast_ttl: int = 32
    multicast_timeout: int = 2
    interfaces: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class HazelcastFacts:
    """What a check needs to know about a hazelcast.xml, read without judging it."""

    schema: tuple[int, int] | None
    instance_name: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    network_count: int = 0  # active <network> elements that are not the disabled join block
    join_methods: tuple[str, ...] = ()  # enabled join methods of the active network
    auto_detection: str | None = None  # the auto-detection element's enabled value, if present
    multicast_group: str | None = None
    multicast_port: str | None = None
    multicast_ttl: str | None = None
    multicast_timeout: str | None = None
    interfaces_enabled: bool = False
    interfaces: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    cluster_name: str | None = None
    discovery_enabled: str | None = None  # value of property hazelcast.discovery.enabled
    has_disabled_join_block: bool = False
    has_commented_network_block: bool = False


# --------------------------------------------------------------------------- schema features


def _has_member_attributes(schema: tuple[int, int] | None) -> bool:
    """Hazelcast 3.x (OM 4.0.x) has no ``<member-attributes name=...>``; unknown = modern."""
    return schema is None or schema >= (4, 0)


def _has_cluster_name(schema: tuple[int, int] | None) -> bool:
    """``cluster-name`` replaced 3.x's ``<group><name>`` in Hazelcast 4.0."""
    return schema is None or schema >= (4, 0)


def _has_auto_detection(schema: tuple[int, int] | None) -> bool:
    """``join/auto-detection`` is absent from the 4.1 XSD and present from 4.2 (5.x: on by
    default), so it is only written where the file's schema knows it."""
    return schema is None or schema >= (4, 2)


# --------------------------------------------------------------------------- parsing


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        resolve_entities=False,
        no_network=True,
        encoding="utf-8",
        strip_cdata=False,
    )


def _parse(text: str) -> etree._Element:
    """Parse a file's text (any declared encoding: the text is already decoded)."""
    return etree.fromstring(text.encode("utf-8"), _parser())


def _schema_of(root: etree._Element) -> tuple[int, int] | None:
    match = _SCHEMA_RE.search(root.get(f"{{{XSI}}}schemaLocation") or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def schema_version(text: str) -> tuple[int, int] | None:
    """The Hazelcast schema version the file names in xsi:schemaLocation, e.g. (5, 5)."""
    return _schema_of(_parse(_normalize(text)[0]))


def _normalize(text: str) -> tuple[str, str, str]:
    """(LF text, newline, BOM): a CRLF file is edited as LF and written back as CRLF."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    crlf = body.count("\r\n")
    newline = "\r\n" if crlf and crlf * 2 >= body.count("\n") else "\n"
    return body.replace("\r\n", "\n"), newline, bom


# --------------------------------------------------------------------------- helpers on the tree


def _local(node: etree._Element) -> str | None:
    """Local name of an element, None for comments, PIs and entities."""
    return etree.QName(node).localname if isinstance(node.tag, str) else None


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in parent if _local(c) == name]


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    found = _children(parent, name)
    return found[0] if found else None


def _enabled(element: etree._Element) -> bool:
    default = "true" if _local(element) in _DEFAULT_ON else "false"
    return (element.get("enabled") or default).strip().lower() == "true"


def _text_before(node: etree._Element) -> str:
    prev = node.getprevious()
    parent = node.getparent()
    if prev is not None:
        return prev.tail or ""
    return (parent.text or "") if parent is not None else ""


def _indent_of(node: etree._Element) -> str:
    """The whitespace that starts ``node``'s line (what siblings are indented with)."""
    before = _text_before(node)
    return before[before.rfind("\n") + 1:] if "\n" in before else ""


def _unit(root: etree._Element) -> str:
    """One indentation step of this file: the root's first child's indent, else a tab."""
    for child in root:
        indent = _indent_of(child)
        if indent:
            return indent
    return "\t"


def _make(name: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A new element in the Hazelcast namespace (the file's default namespace)."""
    # lxml-stubs type nsmap as Mapping[str, str]; lxml documents the None key (default namespace)
    element = etree.Element(f"{{{NS}}}{name}", nsmap={None: NS})  # type: ignore[dict-item]
    for key, value in attrs.items():
        element.set(key, value)
    element.text = text
    return element


def _layout(element: etree._Element, indent: str, unit: str) -> None:
    """Indent a freshly built subtree whose start tag sits at ``indent``."""
    kids = list(element)
    if not kids:
        return
    element.text = "\n" + indent + unit
    for i, kid in enumerate(kids):
        _layout(kid, indent + unit, unit)
        kid.tail = "\n" + indent + (unit if i < len(kids) - 1 else "")


def _append(parent: etree._Element, child: etree._Element, unit: str) -> None:
    """Append ``child`` on its own line, indented like its siblings (or one step in)."""
    kids = list(parent)
    base = _indent_of(parent)
    if kids:
        last = kids[-1]
        indent = _indent_of(kids[0]) or base + unit
        child.tail = last.tail if last.tail and not last.tail.strip() else "\n" + base
        last.tail = (last.tail or "").rstrip() + "\n" + indent
    else:
        indent = base + unit
        parent.text = (parent.text or "").rstrip() + "\n" + indent
        child.tail = "\n" + base
    parent.append(child)
    _layout(child, indent, unit)


def _after_same_line(node: etree._Element) -> etree._Element:
    """``node`` or the last comment that follows it on the same line (the OM file annotates
    ``<instance-name>`` with a trailing comment: inserting between them would orphan it)."""
    while True:
        nxt = node.getnext()
        if nxt is None or _local(nxt) is not None or "\n" in (node.tail or "") \
                or (node.tail or "").strip():
            return node
        node = nxt


def _parent(node: etree._Element) -> etree._Element:
    """The parent of a node the edits reach by walking down from the root (never the root)."""
    parent = node.getparent()
    if parent is None:
        raise ValueError("hazelcast.xml: cannot edit around the root element")
    return parent


def _insert_after(ref: etree._Element, new: etree._Element, unit: str) -> None:
    indent = _indent_of(ref)
    ref = _after_same_line(ref)
    parent = _parent(ref)
    parent.insert(parent.index(ref) + 1, new)
    new.tail = ref.tail
    ref.tail = "\n" + indent
    _layout(new, indent, unit)


def _insert_before(ref: etree._Element, new: etree._Element, unit: str) -> None:
    indent = _indent_of(ref)
    parent = _parent(ref)
    parent.insert(parent.index(ref), new)
    new.tail = "\n" + indent
    _layout(new, indent, unit)


def _drop(node: etree._Element) -> None:
    """Remove ``node`` from its parent, joining the whitespace around it."""
    parent = _parent(node)
    before = _text_before(node)
    tail = node.tail or ""
    if "\n" in before and not before[before.rfind("\n"):].strip():
        before = before[: before.rfind("\n")]
    prev = node.getprevious()
    parent.remove(node)
    if prev is not None:
        prev.tail = before + tail
    else:
        parent.text = before + tail


def _set_text(element: etree._Element, value: str) -> None:
    if (element.text or "") != value:
        element.text = value


def _set_attr(element: etree._Element, name: str, value: str) -> None:
    if element.get(name) != value:
        element.set(name, value)


# --------------------------------------------------------------------------- what is where


def _is_disabled_join_block(network: etree._Element) -> bool:
    """The OM file's ``<network><join>`` whose every join method is off, with nothing else."""
    elements = [c for c in network if _local(c) is not None]
    if [_local(c) for c in elements] != ["join"]:
        return False
    methods = [m for m in elements[0] if _local(m) is not None]
    return bool(methods) and all(not _enabled(m) for m in methods)


def _commented_network(comment: etree._Element) -> etree._Element | None:
    """Parse a root-level comment as the documentation's ``<!--network>...</network-->``
    block; every element lands in the Hazelcast namespace (the comment has none)."""
    body = (comment.text or "").strip()
    if not re.match(r"^<?network\b", body) or not re.search(r"</network\s*>?$", body):
        return None
    if not body.startswith("<"):
        body = "<" + body
    if not body.endswith(">"):
        body += ">"
    try:
        wrapper = etree.fromstring(f'<w xmlns="{NS}">{body}</w>'.encode(), _parser())
    except etree.XMLSyntaxError:
        return None
    found = [c for c in wrapper if _local(c) is not None]
    if len(found) != 1 or _local(found[0]) != "network" or _is_disabled_join_block(found[0]):
        return None  # a commented-out disabled block is not the one to un-comment
    return found[0]


def _root_comments(root: etree._Element) -> list[etree._Element]:
    return [c for c in root if c.tag is etree.Comment]


def _active_networks(root: etree._Element) -> list[etree._Element]:
    return [n for n in _children(root, "network") if not _is_disabled_join_block(n)]


# --------------------------------------------------------------------------- inspect


def _inspect_root(root: etree._Element) -> HazelcastFacts:
    schema = _schema_of(root)
    instance = _child(root, "instance-name")
    attributes: dict[str, str] = {}
    member_attributes = _child(root, "member-attributes")
    if member_attributes is not None:
        for attribute in _children(member_attributes, "attribute"):
            attributes[attribute.get("name", "")] = (attribute.text or "").strip()
    cluster = _child(root, "cluster-name")
    discovery = None
    for props in _children(root, "properties"):
        for prop in _children(props, "property"):
            if prop.get("name") == DISCOVERY_PROPERTY:
                discovery = (prop.text or "").strip()
    networks = _active_networks(root)
    facts: dict = {}
    if networks:
        network = networks[0]
        join = _child(network, "join")
        if join is not None:
            facts["join_methods"] = tuple(
                _local(m) for m in join
                if _local(m) not in (None, "auto-detection", "discovery-strategies")
                and _enabled(m)
            )
            auto = _child(join, "auto-detection")
            if auto is not None:
                facts["auto_detection"] = (auto.get("enabled") or "true").strip().lower()
            multicast = _child(join, "multicast")
            if multicast is not None:
                for key, name in (
                    ("multicast_group", "multicast-group"),
                    ("multicast_port", "multicast-port"),
                    ("multicast_ttl", "multicast-time-to-live"),
                    ("multicast_timeout", "multicast-timeout-seconds"),
                ):
                    value = _child(multicast, name)
                    if value is not None:
                        facts[key] = (value.text or "").strip()
            tcp = _child(join, "tcp-ip")
            if tcp is not None:
                members: list[str] = []
                for holder in [tcp, *_children(tcp, "member-list")]:
                    members += [(m.text or "").strip() for m in _children(holder, "member")]
                for listed in _children(tcp, "members"):
                    members += [m.strip() for m in (listed.text or "").split(",") if m.strip()]
                facts["members"] = tuple(members)
        interfaces = _child(network, "interfaces")
        if interfaces is not None:
            facts["interfaces_enabled"] = (
                (interfaces.get("enabled") or "false").strip().lower() == "true")
            facts["interfaces"] = tuple(
                (i.text or "").strip() for i in _children(interfaces, "interface"))
    return HazelcastFacts(
        schema=schema,
        instance_name=(instance.text or "").strip() if instance is not None else None,
        attributes=attributes,
        network_count=len(networks),
        cluster_name=(cluster.text or "").strip() if cluster is not None else None,
        discovery_enabled=discovery,
        has_disabled_join_block=any(
            _is_disabled_join_block(n) for n in _children(root, "network")),
        has_commented_network_block=any(
            _commented_network(c) is not None for c in _root_comments(root)),
        **facts,
    )


def inspect(text: str) -> HazelcastFacts:
    """Read the facts a check judges (see :class:`HazelcastFacts`)."""
    return _inspect_root(_parse(_normalize(text)[0]))


def problems(text: str, settings: HazelcastSettings) -> list[str]:
    """What in the file differs from ``settings``, one human line each; empty means ok."""
    facts = inspect(text)
    out: list[str] = []
    name = settings.instance_name
    if facts.instance_name != name:
        out.append(f"instance-name is {facts.instance_name!r}, should be the node name {name!r}")
    if _has_member_attributes(facts.schema):
        if facts.attributes.get("name") != name:
            out.append(f"member attribute 'name' is {facts.attributes.get('name')!r}, should be "
                       f"{name!r} (OpenMeetings finds its own server entry by it)")
        url = settings.server_url
        if url is not None and facts.attributes.get("server.url") != url:
            out.append(f"member attribute 'server.url' is {facts.attributes.get('server.url')!r},"
                       f" should be {url!r}")
    if _has_cluster_name(facts.schema) and settings.cluster_name is not None \
            and (facts.cluster_name or "dev") != settings.cluster_name:  # absent: dev
        out.append(f"cluster-name is {facts.cluster_name!r} (Hazelcast default 'dev' when absent),"
                   f" should be {settings.cluster_name!r}")
    if facts.has_disabled_join_block:
        out.append("the disabled <network><join> block (every join method off) is still there:"
                   " this node cannot find the others")
    if (facts.discovery_enabled or "").lower() == "false":
        out.append(f"property {DISCOVERY_PROPERTY}=false is still set")
    if facts.network_count > 1:
        out.append(f"{facts.network_count} <network> elements: Hazelcast refuses duplicates")
    if facts.network_count == 0:
        out.append("no active <network> block: the documentation's block is "
                   + ("still commented out" if facts.has_commented_network_block else "missing"))
        return out
    wanted = settings.join
    if facts.join_methods != (wanted,):
        out.append(f"join methods enabled: {', '.join(facts.join_methods) or 'none'};"
                   f" should be only {wanted}")
    # Hazelcast's JoinConfig.isAutoDetectionEnabled() is false while any other join method is
    # enabled: auto-detection left on beside an enabled multicast/tcp-ip changes nothing.
    if _has_auto_detection(facts.schema) and facts.auto_detection != "false" \
            and not facts.join_methods:
        out.append("join auto-detection is not disabled (Hazelcast >= 4.2 turns it on by"
                   " default; omwizard pins the planned join method)")
    if wanted == "multicast":
        for label, have, want in (
            ("multicast-group", facts.multicast_group, settings.multicast_group),
            ("multicast-port", facts.multicast_port, str(settings.multicast_port)),
            ("multicast-time-to-live", facts.multicast_ttl, str(settings.multicast_ttl)),
            ("multicast-timeout-seconds", facts.multicast_timeout,
             str(settings.multicast_timeout)),
        ):
            if have != want:
                out.append(f"{label} is {have!r}, should be {want!r}")
    elif sorted(facts.members) != sorted(settings.members):
        out.append(f"tcp-ip members are {list(facts.members)}, should be {list(settings.members)}")
    if settings.interfaces:
        if not facts.interfaces_enabled or facts.interfaces != settings.interfaces:
            state = "enabled" if facts.interfaces_enabled else "disabled"
            out.append(f"interfaces ({state}) are {list(facts.interfaces)}, should be enabled"
                       f" with {list(settings.interfaces)}")
    elif facts.interfaces_enabled:
        out.append(f"interfaces are restricted to {list(facts.interfaces)}; the plan has none")
    return out


def warnings(settings: HazelcastSettings, text: str | None = None) -> list[str]:
    """Things that are allowed but likely wrong; with ``text``, also what the file's schema
    version cannot express."""
    out: list[str] = []
    url = settings.server_url
    if url is None:
        out.append("no server_url for this node: member attribute server.url is left as it is")
    else:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
            bare_ip = True
        except ValueError:
            bare_ip = False
        if parts.scheme == "https" and bare_ip:
            out.append(f"server.url {url} is https with a bare IP address: certificates rarely"
                       " cover IPs, so browsers may refuse this node (use its DNS name)")
    if settings.join == "tcp-ip" and not settings.members:
        out.append("join tcp-ip without members: this node will only ever find itself")
    if settings.join == "multicast" and not settings.interfaces:
        out.append("no interfaces: Hazelcast picks an interface itself, which may not be the"
                   " one multicast is routed on")
    if text is not None:
        schema = schema_version(text)
        if not _has_member_attributes(schema):
            version = ".".join(map(str, schema)) if schema else "?"
            out.append(
                f"this hazelcast.xml uses the Hazelcast {version} schema (OpenMeetings 4.0.x):"
                " it has no member attributes, so the node name and server.url cannot be set"
                " here; only instance-name and the network join are configured")
        if not _has_cluster_name(schema) and settings.cluster_name:
            out.append("Hazelcast 3.x has no cluster-name: this cluster keeps the default group"
                       " and may merge with another OpenMeetings cluster on the same LAN")
    return out


# --------------------------------------------------------------------------- transform


def _ensure_root_child(root: etree._Element, name: str, unit: str,
                       before: tuple[str, ...], after: tuple[str, ...]) -> etree._Element:
    """The root child ``name``, created next to a related element if missing (the root is
    an unbounded xs:choice, so placement is for the reader, not the schema)."""
    found = _child(root, name)
    if found is not None:
        return found
    new = _make(name)
    for ref_name in before:
        ref = _child(root, ref_name)
        if ref is not None:
            _insert_before(ref, new, unit)
            return new
    for ref_name in after:
        ref = _child(root, ref_name)
        if ref is not None:
            _insert_after(ref, new, unit)
            return new
    _append(root, new, unit)
    return new


def _ensure_child(parent: etree._Element, name: str, unit: str, first: bool = False,
                  **attrs: str) -> etree._Element:
    found = _child(parent, name)
    if found is None:
        found = _make(name, **attrs)
        kids = [k for k in parent if _local(k) is not None]
        if first and kids:
            _insert_before(kids[0], found, unit)
        else:
            _append(parent, found, unit)
    for key, value in attrs.items():
        _set_attr(found, key, value)
    return found


def _replace_children(parent: etree._Element, name: str, values: tuple[str, ...],
                      unit: str) -> None:
    """Make ``parent``'s ``name`` children exactly ``values`` (untouched when already so)."""
    current = _children(parent, name)
    if [(c.text or "").strip() for c in current] == list(values):
        return
    for old in current:
        _drop(old)
    for value in values:
        _append(parent, _make(name, value), unit)


def _clear(element: etree._Element) -> None:
    for kid in list(element):
        element.remove(kid)
    element.text = None


def _edit_network(network: etree._Element, settings: HazelcastSettings,
                  schema: tuple[int, int] | None, unit: str) -> None:
    join = _ensure_child(network, "join", unit, first=True)
    wanted = settings.join
    if _has_auto_detection(schema):
        _ensure_child(join, "auto-detection", unit, first=True, enabled="false")
    for method in join:
        name = _local(method)
        if name in (None, "auto-detection", "discovery-strategies", wanted):
            continue
        if _enabled(method) or (name == "multicast" and wanted == "tcp-ip"):
            _set_attr(method, "enabled", "false")
        if name == "multicast" and wanted == "tcp-ip" and len(method):
            _clear(method)  # values of a switched-off method only mislead the reader
    if wanted == "multicast":
        multicast = _ensure_child(join, "multicast", unit, enabled="true")
        for name, value in (
            ("multicast-group", settings.multicast_group),
            ("multicast-port", str(settings.multicast_port)),
            ("multicast-time-to-live", str(settings.multicast_ttl)),
            ("multicast-timeout-seconds", str(settings.multicast_timeout)),
        ):
            _set_text(_ensure_child(multicast, name, unit), value)
    else:
        tcp = _ensure_child(join, "tcp-ip", unit, enabled="true")
        have = [(m.text or "").strip() for m in _children(tcp, "member")]
        for holder in _children(tcp, "member-list"):
            have += [(m.text or "").strip() for m in _children(holder, "member")]
        simple = [_local(k) for k in tcp if _local(k) is not None] == ["member-list"]
        if not (simple and have == list(settings.members)):
            for old in [k for k in tcp if _local(k) in ("member", "members", "member-list",
                                                         "interface")]:
                _drop(old)
            member_list = _make("member-list")
            for member in settings.members:
                member_list.append(_make("member", member))
            _append(tcp, member_list, unit)
    interfaces = _child(network, "interfaces")
    if settings.interfaces:
        interfaces = _ensure_child(network, "interfaces", unit, enabled="true")
        _replace_children(interfaces, "interface", settings.interfaces, unit)
    elif interfaces is not None:
        _drop(interfaces)


def _choose_network(root: etree._Element, unit: str) -> etree._Element:
    """The one ``<network>`` to edit, after dropping the disabled join block: an active one
    (hand-edited), else the documentation's commented block put in its comment's place, else
    the disabled block itself (nothing better to edit), else a new one."""
    disabled = [n for n in _children(root, "network") if _is_disabled_join_block(n)]
    active = _active_networks(root)
    if active:
        network = active[0]
    else:
        network = None
        for comment in _root_comments(root):
            parsed = _commented_network(comment)
            if parsed is not None:
                parsed.tail = comment.tail
                root.replace(comment, parsed)
                network = parsed
                break
    if network is None and disabled:
        network = disabled.pop(0)
    for block in disabled:
        _drop(block)
    if network is None:
        network = _make("network")
        properties = _child(root, "properties")
        if properties is not None:
            _insert_before(properties, network, unit)
        else:
            _append(root, network, unit)
    return network


def _edit(root: etree._Element, settings: HazelcastSettings) -> None:
    schema = _schema_of(root)
    unit = _unit(root)
    instance = _ensure_root_child(root, "instance-name", unit,
                                  ("member-attributes", "network", "properties"), ())
    _set_text(instance, settings.instance_name)
    if _has_cluster_name(schema) and settings.cluster_name is not None:
        cluster = _ensure_root_child(root, "cluster-name", unit, ("instance-name",), ())
        _set_text(cluster, settings.cluster_name)
    if _has_member_attributes(schema):
        attrs = _ensure_root_child(root, "member-attributes", unit, (), ("instance-name",))
        wanted = [("name", settings.instance_name)]
        if settings.server_url is not None:
            wanted.append(("server.url", settings.server_url))
        for key, value in wanted:
            found = [a for a in _children(attrs, "attribute") if a.get("name") == key]
            if found:
                _set_text(found[0], value)
            else:
                new = _make("attribute", value)
                new.set("name", key)
                _append(attrs, new, unit)
    for props in _children(root, "properties"):
        for prop in _children(props, "property"):
            if prop.get("name") == DISCOVERY_PROPERTY and \
                    (prop.text or "").strip().lower() == "false":
                _drop(prop)
    network = _choose_network(root, unit)
    _edit_network(network, settings, schema, unit)


def transform(text: str, settings: HazelcastSettings) -> str:
    """The file's text with the clustering edits applied; a no-op on its own output."""
    lf_text, newline, bom = _normalize(text)
    root = _parse(lf_text)
    spans = _Spans(lf_text, root)
    _edit(root, settings)
    out = spans.render_document(root)
    if newline != "\n":
        out = out.replace("\n", newline)
    return bom + out


# --------------------------------------------------------------------------- faithful output


@dataclass
class _Span:
    """Where one original node sits in the source text, and what it was."""

    start: int
    head_end: int  # after the start tag ('>' of '<x ...>' or '/>')
    close_start: int  # '</x>' start; == head_end for an empty-element tag
    end: int
    tag: object = None
    attrib: tuple = ()
    text: str | None = None
    tail: str | None = None
    text_span: tuple[int, int] = (0, 0)
    tail_span: tuple[int, int] = (0, 0)

    @property
    def self_closing(self) -> bool:
        return self.head_end == self.end


_NAME = r"[^\s/>=]+"


class _Spans:
    """Maps every node lxml parsed to its source span, then renders an edited tree reusing
    the source text for whatever did not change."""

    def __init__(self, text: str, root: etree._Element) -> None:
        self.text = text
        raw = self._tokenize(text)
        nodes = [*reversed(list(root.itersiblings(preceding=True))), *root.iter(),
                 *root.itersiblings()]
        if len(nodes) != len(raw):
            raise ValueError("hazelcast.xml: unsupported XML construct (entity or DTD?)")
        self.by_node: dict[etree._Element, _Span] = {}
        for node, (kind, span) in zip(nodes, raw, strict=True):
            is_element = isinstance(node.tag, str)
            if is_element != (kind == "element"):
                raise ValueError("hazelcast.xml: could not map the source to the parsed tree")
            span.tag = node.tag
            span.attrib = tuple(node.attrib.items()) if is_element else ()
            span.text = node.text
            span.tail = node.tail
            self.by_node[node] = span
        for node, span in self.by_node.items():
            if not isinstance(node.tag, str):
                continue
            kids = list(node)
            span.text_span = (span.head_end,
                              self.by_node[kids[0]].start if kids else span.close_start)
            for i, kid in enumerate(kids):
                nxt = self.by_node[kids[i + 1]].start if i + 1 < len(kids) else span.close_start
                self.by_node[kid].tail_span = (self.by_node[kid].end, nxt)
        self.root = root

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, _Span]]:
        """Elements, comments and PIs in document order with their spans."""
        out: list[tuple[str, _Span]] = []
        stack: list[_Span] = []
        pos = 0
        n = len(text)
        while True:
            lt = text.find("<", pos)
            if lt < 0:
                break
            if text.startswith("<!--", lt):
                end = text.index("-->", lt + 4) + 3
                out.append(("comment", _Span(lt, end, end, end)))
            elif text.startswith("<![CDATA[", lt):
                end = text.index("]]>", lt) + 3
            elif text.startswith("<?", lt):
                end = text.index("?>", lt) + 2
                if not re.match(r"<\?xml\s", text[lt:lt + 6]):
                    out.append(("pi", _Span(lt, end, end, end)))
            elif text.startswith("<!", lt):  # DOCTYPE, possibly with an internal subset
                bracket = text.find("[", lt)
                close = text.find(">", lt)
                if 0 <= bracket < close:
                    close = text.index("]", bracket)
                    close = text.index(">", close)
                end = close + 1
            elif text.startswith("</", lt):
                end = text.index(">", lt) + 1
                span = stack.pop()
                span.close_start, span.end = lt, end
            else:
                i = lt + 1
                quote = ""
                while i < n:
                    ch = text[i]
                    if quote:
                        if ch == quote:
                            quote = ""
                    elif ch in "\"'":
                        quote = ch
                    elif ch == ">":
                        break
                    i += 1
                end = i + 1
                if text[i - 1] == "/":
                    out.append(("element", _Span(lt, end, end, end)))
                else:
                    span = _Span(lt, end, end, end)
                    out.append(("element", span))
                    stack.append(span)
            pos = end
        return out

    # -- rendering

    def render_document(self, root: etree._Element) -> str:
        span = self.by_node[root]
        return self.text[: span.start] + self._render(root) + self.text[span.end:]

    def _qname(self, tag: str) -> str:
        qname = etree.QName(tag)
        if qname.namespace is None:
            return qname.localname
        for prefix, uri in (self.root.nsmap or {}).items():
            if uri == qname.namespace:
                return f"{prefix}:{qname.localname}" if prefix else qname.localname
        raise ValueError(f"namespace {qname.namespace} is not declared on the root")

    def _start_tag(self, element: etree._Element, empty: bool) -> str:
        # lxml-stubs say str | bytes; on Python 3 lxml gives attribute names and values as str
        items = cast("list[tuple[str, str]]", element.items())
        attrs = "".join(f' {self._qname(k)}="{_escape_attr(v)}"' for k, v in items)
        return f"<{self._qname(element.tag)}{attrs}{'/>' if empty else '>'}"

    def _render(self, node: etree._Element) -> str:
        span = self.by_node.get(node)
        if not isinstance(node.tag, str):
            if span is not None and node.text == span.text:
                return self.text[span.start: span.end]
            if node.tag is etree.Comment:
                return f"<!--{node.text or ''}-->"
            if node.tag is etree.PI:
                return f"<?{node.target} {node.text or ''}?>"
            return f"&{node.name};"
        kids = list(node)
        empty = not kids and not node.text
        # the original start tag, when this element's tag and attributes did not change
        same = span if span is not None and span.tag == node.tag \
            and span.attrib == tuple(node.attrib.items()) else None
        if same is not None and same.self_closing and empty:
            return self.text[same.start: same.end]
        if same is not None and not same.self_closing:
            head = self.text[same.start: same.head_end]
            close = self.text[same.close_start: same.end]
        else:
            if empty:
                return self._start_tag(node, empty=True)
            head = self._start_tag(node, empty=False)
            close = f"</{self._qname(node.tag)}>"
        parts = [head]
        if span is not None and node.text == span.text and not span.self_closing:
            parts.append(self.text[span.text_span[0]: span.text_span[1]])
        else:
            parts.append(_escape_text(node.text or ""))
        for kid in kids:
            parts.append(self._render(kid))
            kid_span = self.by_node.get(kid)
            if kid_span is not None and kid.tail == kid_span.tail \
                    and kid_span.tail_span[1] >= kid_span.tail_span[0] > 0:
                parts.append(self.text[kid_span.tail_span[0]: kid_span.tail_span[1]])
            else:
                parts.append(_escape_text(kid.tail or ""))
        parts.append(close)
        return "".join(parts)


def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;").replace("\n", "&#10;")
