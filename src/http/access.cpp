// http/access.cpp - CIDR rules parsed with inet_pton(3) and matched on 16 bytes.
#include "preforkd/http/access.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <netinet/in.h>
#include <string>

namespace preforkd::http {
namespace {

constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool parse_address(const std::string& text, std::array<std::uint8_t, 16>& out, bool& v4)
{
    in_addr a4;
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        std::memcpy(out.data(), kMappedPrefix, 12);
        std::memcpy(out.data() + 12, &a4, 4);
        v4 = true;
        return true;
    }
    v4 = false;
    return inet_pton(AF_INET6, text.c_str(), out.data()) == 1;
}

// True when `a` and `b` agree on their first `bits` bits.
bool same_prefix(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                 int bits) noexcept
{
    int whole = bits / 8;
    if (std::memcmp(a.data(), b.data(), std::size_t(whole)) != 0) return false;
    int rest = bits % 8;
    if (rest == 0) return true;
    std::uint8_t mask = std::uint8_t(0xff << (8 - rest));
    return (a[std::size_t(whole)] & mask) == (b[std::size_t(whole)] & mask);
}

bool host_bits_clear(const std::array<std::uint8_t, 16>& a, int bits) noexcept
{
    for (int i = bits; i < 128; ++i)
        if (a[std::size_t(i / 8)] & (0x80 >> (i % 8))) return false;
    return true;
}

}  // namespace

ClientAddress client_address(const sockaddr_storage& peer) noexcept
{
    ClientAddress c;
    if (peer.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
        std::memcpy(c.bytes.data(), kMappedPrefix, 12);
        std::memcpy(c.bytes.data() + 12, &in.sin_addr, 4);
        c.known = true;
    } else if (peer.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
        std::memcpy(c.bytes.data(), &in6.sin6_addr, 16);
        c.known = true;
    }
    return c;
}

std::optional<AccessRule> parse_access_rule(bool allow, std::string_view text)
{
    AccessRule r;
    r.allow = allow;
    if (text == "all") {
        r.all = true;
        return r;
    }
    std::size_t slash = text.find('/');
    bool v4 = false;
    if (!parse_address(std::string(text.substr(0, slash)), r.net, v4)) return std::nullopt;
    int max = v4 ? 32 : 128;
    int bits = max;
    if (slash != std::string_view::npos) {
        std::string_view digits = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
        if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
            bits < 0 || bits > max)
            return std::nullopt;
    }
    r.bits = bits + (v4 ? 96 : 0);
    if (!host_bits_clear(r.net, r.bits)) return std::nullopt;
    return r;
}

bool access_allowed(const std::vector<AccessRule>& rules, const ClientAddress& client) noexcept
{
    bool any_allow = false;
    for (const AccessRule& r : rules) {
        if (r.all || (client.known && same_prefix(r.net, client.bytes, r.bits))) return r.allow;
        any_allow = any_allow || r.allow;
    }
    return !any_allow;
}

}  // namespace preforkd::http
