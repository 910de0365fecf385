"""The outbound guard: where Warden may send webhooks, Slack messages and e-mail.

Channel URLs come from users, so every outbound call is a server-side request forgery risk. The
guard resolves the host *once*, refuses addresses that reach Warden itself or the cloud control
plane, and the caller then connects to exactly the address that was checked (so a DNS answer
that changes between check and connect — rebinding — cannot slip through).

Refused unless an admin allow-listed the target for the project:

- loopback (``127.0.0.0/8``, ``::1``) and every address of this machine (Warden itself): an
  address counts as this machine's when a socket can be bound to it, which finds every
  interface's address (not only what the host name resolves to);
- link-local (``169.254.0.0/16``, ``fe80::/10``), which includes the metadata service
  ``169.254.169.254``, and other well-known metadata addresses and host names;
- unspecified (``0.0.0.0``, ``::``), multicast and reserved addresses;
- schemes other than ``http``/``https`` and URLs carrying credentials.

Private networks (``10/8``, ``172.16/12``, ``192.168/16``) are allowed: a self-hosted Warden
usually notifies services on its own network. Redirects are never followed (a 3xx is a failed
attempt), proxies from the environment are ignored, and every call has a timeout.

An allow-list entry is a host name (exact match) or an IP network in CIDR form (a bare address
means that one address); it is stored per project by an admin and audited by the caller. A
network may let loopback, link-local or metadata addresses through only by naming the single
address: a range that covers them (``0.0.0.0/1`` covers ``127.0.0.0/8``) is refused when added,
and an older stored one is not honoured for them.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.tables import Record

__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTNAMES",
    "AllowEntry",
    "OutboundRefused",
    "Resolver",
    "Target",
    "add_allow_entry",
    "check_host",
    "check_url",
    "guard_for_project",
    "list_allow_entries",
    "remove_allow_entry",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

METADATA_HOSTNAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)


class OutboundRefused(InvalidInput):
    """Raise when the guard refuses a destination; the message says how an admin can allow it."""

    title = "Outbound target refused"


class AllowEntry(Record, table=True):
    """One destination an admin allowed for a project's outbound calls despite the guard."""

    __tablename__ = "governance_outbound_allow"
    __table_args__ = (sa.UniqueConstraint("project_id", "target"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    target: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    note: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


@dataclass(frozen=True, slots=True)
class Target:
    """A destination that passed the guard: connect to ``address``, never re-resolve ``host``.

    Attributes:
        scheme: ``http``, ``https`` or ``smtp``.
        host: The host name as the user wrote it (for the ``Host`` header, TLS SNI, logs).
        port: The port to connect to.
        address: The checked IP address to connect to.
        allowed_by: The allow-list entry that let a refused address through, if any.
    """

    scheme: str
    host: str
    port: int
    address: str
    allowed_by: str | None = None

    def pinned_url(self, url: str) -> str:
        """Return ``url`` with its host replaced by the checked address."""
        parts = urlsplit(url)
        address = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{address}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        """Return the ``Host`` header value the server expects."""
        default = {"http": 80, "https": 443}.get(self.scheme)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:  # UnicodeError: not a valid IDNA host name
        raise OutboundRefused(
            f"the host {host!r} cannot be resolved ({error}); check the name", field="url"
        ) from error
    return sorted({str(info[4][0]) for info in infos})


_NEVER_LOCAL = ipaddress.ip_address("203.0.113.254")  # TEST-NET-3: no machine owns it


def _bindable(address: IPAddress) -> bool:
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


class _ThisMachine:
    """The addresses that reach Warden itself: those a socket can bind, and the host name's.

    Binding asks the kernel directly, so every interface counts (a second network card, a
    container bridge), not only what the host name resolves to. Where the kernel lets any
    address be bound (``net.ipv4.ip_nonlocal_bind``), only the host name's addresses count.
    """

    def __init__(self) -> None:
        try:
            _name, _aliases, addresses = socket.gethostbyname_ex(socket.gethostname())
        except OSError:
            addresses = []
        self._named: set[IPAddress] = {ipaddress.ip_address(text) for text in addresses}
        self._probe = not _bindable(_NEVER_LOCAL)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return address in self._named or (self._probe and _bindable(address))


def _own_addresses() -> Container[IPAddress]:
    """Return the addresses of this machine: reaching them reaches Warden."""
    return _ThisMachine()


def _normalise(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _refusal(address: IPAddress, own: Container[IPAddress]) -> str | None:
    """Return why ``address`` is refused by default, or ``None`` when it may be reached."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if address.is_loopback:
        return "loopback (Warden itself)"
    if address in own:
        return "this machine (Warden itself)"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    return None


def _parse_entry(text: str) -> IPNetwork | str:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text.lower().rstrip(".")


_SINGLE_ONLY = (
    *(
        ipaddress.ip_network(n)
        for n in ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/32", "::/128")
    ),
    *(ipaddress.ip_network(a) for a in sorted(METADATA_ADDRESSES, key=str)),
)
"""Ranges an allow-list network may open only one address at a time (never by a wide prefix)."""


def _guarded_range(network: IPNetwork) -> IPNetwork | None:
    """Return the loopback, link-local or metadata range a multi-address ``network`` covers."""
    if network.num_addresses == 1:
        return None
    return next(
        (
            guarded
            for guarded in _SINGLE_ONLY
            if guarded.version == network.version and network.overlaps(guarded)
        ),
        None,
    )


def _single_only(address: IPAddress) -> bool:
    return address in METADATA_ADDRESSES or address.is_loopback or address.is_link_local


def _admits(entry: IPNetwork | str, address: IPAddress) -> bool:
    """Return whether the network ``entry`` lets ``address`` through (host names: never here)."""
    if isinstance(entry, str) or address not in entry:
        return False
    return entry.num_addresses == 1 or not _single_only(address)


def check_host(
    *,
    scheme: str,
    host: str,
    port: int,
    allowlist: Iterable[str] = (),
    resolver: Resolver | None = None,
    own_addresses: Container[IPAddress] | None = None,
) -> Target:
    """Resolve ``host`` and return the address to connect to, or raise :class:`OutboundRefused`.

    Every resolved address must pass (a name that resolves to one public and one loopback address
    is refused), unless an allow-list entry names the host or contains the address.

    Args:
        scheme: The protocol, for the returned target.
        host: The host name or IP literal.
        port: The port.
        allowlist: The project's allow-list entries.
        resolver: Resolves ``(host, port)`` to IP strings; the system resolver by default.
        own_addresses: Addresses that reach Warden itself; this machine's by default.
    """
    name = host.lower().rstrip(".").strip("[]")
    if not name:
        raise OutboundRefused("the URL has no host; give a full http(s) URL", field="url")
    entries = [_parse_entry(e) for e in allowlist]
    named = next((e for e in entries if isinstance(e, str) and e == name), None)
    if named is None and name in METADATA_HOSTNAMES:
        raise OutboundRefused(
            f"the host {host!r} is a local or metadata host name; outbound calls to it are "
            "refused unless a project admin adds it to the outbound allow-list",
            field="url",
        )
    texts = list((resolver or _system_resolver)(name, port))
    if not texts:
        raise OutboundRefused(f"the host {host!r} resolves to no address", field="url")
    own = _own_addresses() if own_addresses is None else own_addresses
    addresses = [_normalise(ipaddress.ip_address(t.split("%")[0])) for t in texts]
    allowed_by: str | None = named
    for address in addresses:
        reason = _refusal(address, own)
        if reason is None or named is not None:
            continue
        network = next((e for e in entries if _admits(e, address)), None)
        if network is None:
            raise OutboundRefused(
                f"the host {host!r} resolves to {address}, which is {reason}; outbound calls "
                "there are refused unless a project admin adds the host or address to the "
                "outbound allow-list",
                field="url",
            )
        allowed_by = str(network)
    return Target(
        scheme=scheme, host=name, port=port, address=str(addresses[0]), allowed_by=allowed_by
    )


def check_url(
    url: str,
    *,
    allowlist: Iterable[str] = (),
    resolver: Resolver | None = None,
    own_addresses: Container[IPAddress] | None = None,
) -> Target:
    """Check an ``http``/``https`` URL with :func:`check_host` and return its pinned target."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise OutboundRefused(f"the URL is malformed ({error}); fix it", field="url") from error
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(
            f"the URL scheme {parts.scheme!r} is not allowed; use http or https", field="url"
        )
    if parts.username or parts.password:
        raise OutboundRefused(
            "the URL carries credentials; remove them (webhooks are signed instead)", field="url"
        )
    host = parts.hostname or ""
    return check_host(
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        allowlist=allowlist,
        resolver=resolver,
        own_addresses=own_addresses,
    )


def list_allow_entries(*, session: Session, project_id: uuid.UUID) -> list[AllowEntry]:
    """Return the project's outbound allow-list, oldest first."""
    query = (
        select(AllowEntry)
        .where(AllowEntry.project_id == project_id)
        .order_by(col(AllowEntry.created_at).asc())
    )
    return list(session.exec(query).all())


def add_allow_entry(
    *, session: Session, project_id: uuid.UUID, target: str, note: str, created_by: str
) -> AllowEntry:
    """Allow a host name or network for the project's outbound calls (an admin decision)."""
    text = target.strip()
    parsed = _parse_entry(text)
    if isinstance(parsed, str):
        if not parsed or "/" in parsed or ":" in parsed or " " in parsed:
            raise InvalidInput(
                f"{target!r} is neither a host name nor an IP network; give e.g. "
                "'hooks.internal', '10.0.0.5' or '10.0.0.0/24'",
                field="target",
            )
        normalised = parsed
    else:
        if parsed.prefixlen == 0:
            raise InvalidInput(
                "allowing every address defeats the guard; give a narrower network",
                field="target",
            )
        guarded = _guarded_range(parsed)
        if guarded is not None:
            raise InvalidInput(
                f"{str(parsed)!r} covers {guarded} (loopback, link-local or a metadata "
                "service); allow such an address only one at a time, e.g. '127.0.0.1'",
                field="target",
            )
        normalised = str(parsed)
    exists = session.exec(
        select(AllowEntry).where(
            AllowEntry.project_id == project_id, AllowEntry.target == normalised
        )
    ).first()
    if exists is not None:
        raise Conflict(f"{normalised!r} is already allowed in this project", field="target")
    entry = AllowEntry(project_id=project_id, target=normalised, note=note, created_by=created_by)
    session.add(entry)
    session.flush()
    return entry


def remove_allow_entry(
    *, session: Session, project_id: uuid.UUID, entry_id: uuid.UUID
) -> AllowEntry:
    """Remove an allow-list entry; outbound calls to it are refused again."""
    entry = session.get(AllowEntry, entry_id)
    if entry is None or entry.project_id != project_id:
        raise NotFound(f"no outbound allow-list entry {entry_id} in this project")
    session.delete(entry)
    session.flush()
    return entry


def guard_for_project(
    *, session: Session, project_id: uuid.UUID, resolver: Resolver | None = None
) -> Callable[[str, int | None], Target]:
    """Return a checker for the project's destinations, with its allow-list applied.

    The checker takes ``(url, None)`` for http(s) URLs and ``(host, port)`` for SMTP servers.
    """
    allowlist = [e.target for e in list_allow_entries(session=session, project_id=project_id)]

    def check(destination: str, port: int | None) -> Target:
        if port is None:
            return check_url(destination, allowlist=allowlist, resolver=resolver)
        return check_host(
            scheme="smtp", host=destination, port=port, allowlist=allowlist, resolver=resolver
        )

    return check
