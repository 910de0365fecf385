from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

import pytest
from sqlalchemy.engine import Engine

from governance.outbound import (
    OutboundRefused,
    Resolver,
    add_allow_entry,
    check_host,
    check_url,
    list_allow_entries,
    remove_allow_entry,
)
from lineage import Conflict, InvalidInput, create_project, session_scope

NO_OWN: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()


def dns(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, _port: int) -> Sequence[str]:
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://127.8.9.10/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
    ],
)
def test_internal_and_metadata_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused, match=reason):
        check_url(url, own_addresses=NO_OWN)


@pytest.mark.parametrize(
    "host", ["localhost", "metadata.google.internal", "METADATA.google.internal.", "metadata"]
)
def test_local_and_metadata_host_names_are_refused_before_resolving(host: str) -> None:
    def never(_host: str, _port: int) -> Sequence[str]:
        raise AssertionError("must not resolve a refused name")

    with pytest.raises(OutboundRefused, match="metadata host name"):
        check_url(f"http://{host}/x", resolver=never, own_addresses=NO_OWN)


@pytest.mark.parametrize("host", ["x\U000f53c5y.example", "a" * 64 + ".example"])
def test_a_host_that_is_no_valid_idna_name_is_refused_not_crashed(host: str) -> None:
    with pytest.raises(OutboundRefused, match="cannot be resolved"):
        check_host(scheme="smtp", host=host, port=25, own_addresses=NO_OWN)


def test_a_name_resolving_to_an_internal_address_is_refused() -> None:
    resolver = dns({"hooks.example.com": ["203.0.113.7", "169.254.169.254"]})
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254, which is a cloud metadata"):
        check_url("https://hooks.example.com/x", resolver=resolver, own_addresses=NO_OWN)


def test_warden_itself_is_refused() -> None:
    own = {ipaddress.ip_address("203.0.113.9")}
    resolver = dns({"warden.example.com": ["203.0.113.9"]})
    with pytest.raises(OutboundRefused, match="Warden itself"):
        check_url("https://warden.example.com/api", resolver=resolver, own_addresses=own)


def test_a_public_address_passes_and_is_pinned() -> None:
    resolver = dns({"hooks.example.com": ["203.0.113.7"]})
    target = check_url(
        "https://hooks.example.com/in?x=1",
        resolver=resolver,
        own_addresses=NO_OWN,
    )
    assert target.address == "203.0.113.7"
    assert target.port == 443
    assert target.pinned_url("https://hooks.example.com/in?x=1") == "https://203.0.113.7:443/in?x=1"
    assert target.host_header == "hooks.example.com"
    assert target.allowed_by is None


def test_private_networks_are_allowed_by_default() -> None:
    assert check_url("http://10.1.2.3:9000/hook", own_addresses=NO_OWN).address == "10.1.2.3"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://example.com/x", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http://user:pw@example.com/", "carries credentials"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(OutboundRefused, match=match):
        check_url(url, own_addresses=NO_OWN)


def test_an_allow_list_network_lets_loopback_through() -> None:
    target = check_url("http://127.0.0.1:8123/hook", allowlist=["127.0.0.1"], own_addresses=NO_OWN)
    assert target.allowed_by == "127.0.0.1/32"
    with pytest.raises(OutboundRefused, match="loopback"):
        check_url("http://127.0.0.2:8123/hook", allowlist=["127.0.0.1"], own_addresses=NO_OWN)


def test_an_allow_list_host_name_lets_that_name_through() -> None:
    resolver = dns({"hooks.internal": ["169.254.1.1"]})
    target = check_host(
        scheme="smtp",
        host="Hooks.Internal",
        port=25,
        allowlist=["hooks.internal"],
        resolver=resolver,
        own_addresses=NO_OWN,
    )
    assert (target.address, target.allowed_by) == ("169.254.1.1", "hooks.internal")


def test_allow_list_entries_are_stored_per_project(engine: Engine) -> None:
    with session_scope(engine) as session:
        acme = create_project(session=session, name="acme")
        other = create_project(session=session, name="other")
        entry = add_allow_entry(
            session=session, project_id=acme.id, target="10.0.0.0/8 ", note="lab", created_by="a"
        )
        add_allow_entry(
            session=session, project_id=acme.id, target="Hooks.Internal", note="", created_by="a"
        )
        assert entry.target == "10.0.0.0/8"
        assert [e.target for e in list_allow_entries(session=session, project_id=acme.id)] == [
            "10.0.0.0/8",
            "hooks.internal",
        ]
        assert list_allow_entries(session=session, project_id=other.id) == []
        with pytest.raises(Conflict, match="already allowed"):
            add_allow_entry(
                session=session, project_id=acme.id, target="10.0.0.0/8", note="", created_by="a"
            )
        remove_allow_entry(session=session, project_id=acme.id, entry_id=entry.id)
        assert len(list_allow_entries(session=session, project_id=acme.id)) == 1


@pytest.mark.parametrize(
    ("target", "match"),
    [("0.0.0.0/0", "defeats the guard"), ("http://x/", "neither a host name"), ("", "neither")],
)
def test_bad_allow_list_entries_are_refused(engine: Engine, target: str, match: str) -> None:
    with session_scope(engine) as session:
        acme = create_project(session=session, name="acme")
        with pytest.raises(InvalidInput, match=match):
            add_allow_entry(
                session=session, project_id=acme.id, target=target, note="", created_by="a"
            )


def _this_machines_address() -> ipaddress.IPv4Address:
    """Return this machine's address on its default route (connecting UDP sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            pytest.skip("this machine has no IPv4 route off loopback")
        address = ipaddress.IPv4Address(probe.getsockname()[0])
    if address.is_loopback:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


def test_this_machines_own_non_loopback_address_is_refused() -> None:
    address = _this_machines_address()
    with pytest.raises(OutboundRefused, match=r"this machine \(Warden itself\)"):
        check_url(f"http://{address}:8000/api/v1/projects")
    resolver = dns({"innocent.example.com": [str(address)]})
    with pytest.raises(OutboundRefused, match="Warden itself"):
        check_url("https://innocent.example.com/hook", resolver=resolver)
    assert (
        check_url(
            "https://hooks.example.com/", resolver=dns({"hooks.example.com": ["203.0.113.7"]})
        ).address
        == "203.0.113.7"
    )


@pytest.mark.parametrize(
    ("target", "covered"),
    [
        ("0.0.0.0/1", "127.0.0.0/8"),
        ("127.0.0.0/8", "127.0.0.0/8"),
        ("127.0.0.0/31", "127.0.0.0/8"),
        ("169.254.0.0/16", "169.254.0.0/16"),
        ("169.254.169.0/24", "169.254.0.0/16"),
        ("100.64.0.0/10", "100.100.100.200/32"),
        ("::/1", "::1/128"),
        ("fe80::/64", "fe80::/10"),
        ("fd00:ec2::/64", "fd00:ec2::254/128"),
    ],
)
def test_an_allow_list_range_may_not_cover_loopback_link_local_or_metadata(
    engine: Engine, target: str, covered: str
) -> None:
    with session_scope(engine) as session:
        acme = create_project(session=session, name="acme")
        with pytest.raises(InvalidInput, match=f"covers {re.escape(covered)}"):
            add_allow_entry(
                session=session, project_id=acme.id, target=target, note="", created_by="a"
            )
        for single in ("127.0.0.1", "169.254.169.254", "10.0.0.0/8", "fd12::/16"):
            add_allow_entry(
                session=session, project_id=acme.id, target=single, note="", created_by="a"
            )


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://169.254.169.254/latest/", "http://100.100.100.200/"],
)
def test_a_stored_wide_entry_is_not_honoured_for_guarded_addresses(url: str) -> None:
    wide = ["0.0.0.0/1", "64.0.0.0/2", "169.254.0.0/16"]
    with pytest.raises(OutboundRefused, match="refused unless"):
        check_url(url, allowlist=wide, own_addresses=NO_OWN)
    assert check_url("http://10.9.8.7/", allowlist=wide, own_addresses=NO_OWN).allowed_by is None
