"""One definition of the SMTP host grammar (RFC 5321 §4.1.2, §4.1.3): domains, address literals,
and IP address literals given where a host name must not be resolved."""

from __future__ import annotations

import ipaddress
import re

# RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str]; Domain = sub-domain *("." sub-domain).
SUBDOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
DOMAIN = rf"{SUBDOMAIN}(?:\.{SUBDOMAIN})*"
# RFC 5321 §4.1.3: IPv4-address-literal = Snum 3("."  Snum).
IPV4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}"
# address-literal = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal )
# "]"; IPv6-address-literal = "IPv6:" IPv6-addr; General-address-literal = Standardized-tag ":"
# 1*dcontent.
ADDRESS_LITERAL = (
    rf"\[(?:{IPV4}|IPv6:[0-9A-Fa-f:.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]"
)

_DOMAIN_RE = re.compile(DOMAIN)
_ADDRESS_LITERAL_RE = re.compile(ADDRESS_LITERAL)


def is_domain(text: str) -> bool:
    """True when *text* is a Domain (RFC 5321 §4.1.2)."""
    return _DOMAIN_RE.fullmatch(text) is not None


def is_address_literal(text: str) -> bool:
    """True when *text* is an address-literal (RFC 5321 §4.1.3), ``[192.0.2.1]`` or
    ``[IPv6:2001:db8::1]``; an IPv6 literal must hold a valid IPv6 address."""
    if _ADDRESS_LITERAL_RE.fullmatch(text) is None:
        return False
    if text.startswith("[IPv6:"):
        try:
            ipaddress.IPv6Address(text[6:-1])
        except ValueError:
            return False
    return True


def ip_literal(host: str) -> str:
    """*host* normalised if it is an IPv4 or IPv6 address; ValueError for anything else (a host
    name is never resolved here: that would go through the system resolver)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"host names are not resolved; give an IP address (got {host!r})") from None
