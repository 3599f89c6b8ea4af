"""SSRF protection: which addresses we may connect to, enforced at connect time.

The check runs inside httpcore's network backend, on the very address a socket is opened to,
so neither a redirect nor a DNS answer that changes between check and connect (rebinding) can
slip past it. Loopback, private, link-local (cloud metadata 169.254.169.254), multicast,
reserved, CGNAT and their IPv6 forms (incl. IPv4-mapped, 6to4, Teredo) are refused unless the
host or network is on the explicit allowlist.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Iterable

import anyio
import httpcore
import httpx

from mcp_servers.core.errors import UserError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(UserError):
    """A URL whose host is (or resolves to) an address we must not reach."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def why_blocked(ip: IPAddress) -> str | None:
    """The kind of non-public address this is, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return why_blocked(inner)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved (non-public)"
    return None


class AddressPolicy:
    """Public addresses only, plus the host names and networks on the allowlist."""

    def __init__(self, allowlist: Iterable[str] = ()):
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowlist:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry)

    def check(self, host: str, ip: IPAddress) -> None:
        """Raise Refused unless connecting to `ip` (for `host`) is allowed."""
        if host.lower().rstrip(".") in self.names or any(ip in net for net in self.networks):
            return
        kind = why_blocked(ip)
        if kind is not None:
            shown = host if host.strip("[]") == str(ip) else f"{host} ({ip})"
            raise Refused(
                f"Refused: {shown} is a {kind} address; fetching private or internal addresses is not "
                "allowed. Add the host to ALPHAAVATAR_RESEARCH_FETCH_ALLOWLIST to permit it."
            )

    def check_literal(self, host: str) -> None:
        """Refuse an IP literal or `localhost` before any I/O (names are checked once resolved)."""
        bare = host.strip("[]").lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(bare)
        except ValueError:
            if (bare == "localhost" or bare.endswith(".localhost")) and bare not in self.names:
                raise Refused(
                    f"Refused: {host} is a loopback address; fetching private or internal addresses is "
                    "not allowed. Add it to ALPHAAVATAR_RESEARCH_FETCH_ALLOWLIST to permit it."
                ) from None
            return
        self.check(host, ip)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, each checked: one bad answer refuses the host."""
        bare = host.strip("[]")
        try:
            return [self._checked(host, ipaddress.ip_address(bare))]
        except ValueError:
            pass
        try:
            infos = await anyio.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        ips: list[IPAddress] = []
        for *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if ip not in ips:
                ips.append(self._checked(host, ip))
        return ips

    def _checked(self, host: str, ip: IPAddress) -> IPAddress:
        self.check(host, ip)
        return ip


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy):
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for ip in await self.policy.resolve(host, port):
            try:
                # TLS is started later with the original host name (SNI, certificate check).
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> httpcore.AsyncNetworkStream:
        raise Refused("Refused: unix sockets are not allowed.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(policy: AddressPolicy) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through the policy (no env proxies)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx exposes no network-backend option; its pool is rebuilt with ours, same defaults.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=20,
        max_keepalive_connections=10,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy),
    )
    return transport
