// http/host.cpp - Host validation by the RFC 3986 grammar, and the name sites match on.
//
// The grammar is checked piece by piece (split off the port, then one of
// the three host forms) rather than by one character class: a class admits
// "4714::abcd:8001" and "[4712::abcd::]", which no client can mean and which
// two servers behind each other could read differently.  IPv6 literals go
// through inet_pton(3), the libc's own parser, so "valid" means what the
// socket layer would accept.  IPvFuture ("[v1.x]") is refused: nothing can
// be reached at such an address over HTTP/1.1 today.
#include "preforkd/http/host.hpp"

#include <algorithm>
#include <arpa/inet.h>

#include "preforkd/http/fields.hpp"

namespace preforkd::http {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) noexcept
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 reg-name: *( unreserved / pct-encoded / sub-delims ); the caller
// has already refused the empty name.
bool valid_reg_name(std::string_view s) noexcept
{
    static constexpr std::string_view extra = "-._~!$&'()*+,;=";
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
            i += 2;
        } else if (!is_alpha(c) && !is_digit(c) && extra.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

bool valid_ipv6(std::string_view s) noexcept
{
    char text[64];
    if (s.size() >= sizeof text) return false;
    s.copy(text, s.size());
    text[s.size()] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET6, text, addr) == 1;
}

bool valid_port(std::string_view port) noexcept
{
    for (char c : port)
        if (!is_digit(c)) return false;
    return true;   // RFC 3986: port = *DIGIT, so "host:" is allowed
}

// Where the host ends: at the port's ':', or at the end.  In a bracketed
// literal the port can only follow the ']', and anything else after it
// ("[::1]x") is left for the host check to refuse.
std::size_t host_end(std::string_view a) noexcept
{
    if (!a.empty() && a.front() == '[') {
        std::size_t close = a.find(']');
        if (close == std::string_view::npos) return a.size();
        return close + 1 < a.size() && a[close + 1] == ':' ? close + 1 : a.size();
    }
    return std::min(a.find(':'), a.size());
}

}  // namespace

bool valid_authority(std::string_view a) noexcept
{
    std::size_t end = host_end(a);
    std::string_view host = a.substr(0, end);
    if (end < a.size() && !valid_port(a.substr(end + 1))) return false;
    if (host.empty()) return false;
    if (host.front() == '[')
        return host.size() > 2 && host.back() == ']' && valid_ipv6(host.substr(1, host.size() - 2));
    // A reg-name cannot hold ':' or brackets, so "4714::abcd:8001" (an
    // unbracketed IPv6 address) fails here on its second colon.  A dotted
    // IPv4 address is a reg-name by the grammar's characters.
    return valid_reg_name(host);
}

std::string host_name(std::string_view a)
{
    std::string_view host = a.substr(0, host_end(a));
    if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
    return ascii_lower(host);
}

}  // namespace preforkd::http
