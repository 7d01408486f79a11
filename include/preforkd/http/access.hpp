// http/access.hpp - allow/deny rules on the client address (IPv4, IPv6, CIDR).
//
// Addresses are kept as 16 bytes, an IPv4 address in its IPv4-mapped IPv6
// form (::ffff:a.b.c.d), so one comparison serves both families and a rule
// "10.0.0.0/8" also matches a client that reached a dual-stack listener as
// ::ffff:10.1.2.3.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/socket.h>
#include <vector>

namespace preforkd::http {

struct ClientAddress {
    std::array<std::uint8_t, 16> bytes{};
    bool known = false;   // false for unix-socket clients: only "all" matches them
};

// The client address of an accepted connection.
ClientAddress client_address(const sockaddr_storage& peer) noexcept;

struct AccessRule {
    bool allow = true;
    bool all = false;                  // "all": matches every client
    std::array<std::uint8_t, 16> net{};
    int bits = 128;                    // prefix length over the 16 bytes
};

// Parses "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1" or "all".  Empty
// for anything else, and for host bits set beyond the prefix
// ("10.0.0.1/8"), which usually is a typo for a different network.
std::optional<AccessRule> parse_access_rule(bool allow, std::string_view text);

// The first rule that matches decides.  When none matches, the client is
// allowed unless the list holds an allow rule (then only listed clients
// are), as with nginx's allow/deny and Apache's Require ip.
bool access_allowed(const std::vector<AccessRule>& rules, const ClientAddress& client) noexcept;

}  // namespace preforkd::http
