"""Which network addresses a feed may come from: public ones, unless its source says otherwise.

Without this, a feed URL or a redirect naming ``127.0.0.1``, a cloud metadata address
(``169.254.169.254``) or an intranet host has digest fetch it and mail what it answered to
every reader (server-side request forgery). So every address digest is about to connect
to is checked: the one a host name resolved to, at connect time (``digest.sources.download``
connects to exactly the address checked here, so a DNS answer that changes between the
check and the connection cannot slip past), and a numeric host before any request.

Refused: loopback, private (RFC 1918, IPv6 unique local), link-local, unspecified,
multicast, and every other range that is not globally routable (shared, reserved,
documentation), also when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4). A source with
``allow_private_addresses = true`` (an intranet feed) skips the check.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

from digest.errors import SourceError

IPAddress = IPv4Address | IPv6Address

_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address


class PrivateAddress(SourceError):
    """A connection to ``address`` (for ``host``) was refused: it is not a public address.

    Raised where no source is known (the network backend); ``digest.sources.download``
    turns it into the message for the source.
    """

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        super().__init__(f"{host} is {shown(address)}, a {kind} address")
        self.host, self.address, self.kind = host, address, kind


def shown(address: IPAddress) -> str:
    """``address`` as people write it (``::ffff:127.0.0.1``, not ``::ffff:7f00:1``)."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def refusal(address: IPAddress) -> str:
    """What kind of non-public address ``address`` is ("loopback", "private", ...), or "".

    An IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
    ``64:ff9b::a.b.c.d``, 6to4 ``2002:aabb:ccdd::``) is judged by that IPv4 address.
    """
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return refusal(embedded)
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global or address.is_reserved:
        return "reserved"
    if isinstance(address, IPv6Address) and address.is_site_local:
        return "reserved"
    return ""


def check(host: str, address: IPAddress) -> None:
    """Raise ``PrivateAddress`` unless ``address`` (what ``host`` stands for) is public."""
    kind = refusal(address)
    if kind:
        raise PrivateAddress(host, address, kind)


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric ``host`` stands for, read as the system resolver reads it.

    That takes in every spelling a connection would accept: ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are all ``127.0.0.1``. ``localhost``
    and ``*.localhost`` are loopback by definition (RFC 6761). None for other names:
    only resolving them tells, which is done at connect time.
    """
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return IPv4Address("127.0.0.1")
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ip_address(found[0][4][0]) if found else None
