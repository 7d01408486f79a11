// tls/proxy_socket.cpp - reading a PROXY header off a socket (see the header).
//
// Peeking costs one extra system call per connection against reading into
// a buffer that is then handed to TLS and HTTP; it keeps both front ends
// unaware of the PROXY protocol, which is worth more.
#include "preforkd/tls/proxy_socket.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <poll.h>

#include "preforkd/http/access.hpp"
#include "preforkd/tls/proxy.hpp"

namespace preforkd::proxy {
namespace {

std::int64_t now_ms()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool to_sockaddr(const Header& h, sockaddr_storage& out)
{
    out = {};
    auto& in4 = reinterpret_cast<sockaddr_in&>(out);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    if (inet_pton(AF_INET, h.source.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(std::uint16_t(h.source_port));
        return true;
    }
    if (inet_pton(AF_INET6, h.source.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(std::uint16_t(h.source_port));
        return true;
    }
    return false;
}

// Waits for more bytes until `deadline`; false on timeout, a hang-up with
// nothing to read, or a quit request.
bool wait_readable(int fd, std::int64_t deadline, const sigset_t* mask,
                   const volatile sig_atomic_t* quit, std::string& error)
{
    for (;;) {
        std::int64_t left = deadline - now_ms();
        if (left <= 0) {
            error = "no PROXY header in time";
            return false;
        }
        pollfd p{fd, POLLIN, 0};
        timespec ts{time_t(left / 1000), long(left % 1000) * 1000000};
        int n = ::ppoll(&p, 1, &ts, mask);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR) {
            error = std::string("ppoll: ") + std::strerror(errno);
            return false;
        }
        if (quit && *quit) {
            error = "told to quit while waiting for a PROXY header";
            return false;
        }
    }
}

}  // namespace

bool trusted(const std::vector<config::Cidr>& trusted, const sockaddr_storage& peer)
{
    if (trusted.empty())
        return true;
    std::vector<http::AccessRule> rules;
    for (const config::Cidr& c : trusted)
        if (auto rule = http::parse_access_rule(true, c.text))
            rules.push_back(*rule);
    // Nothing matching means allowed to access_allowed(); a final "deny
    // all" makes the list an allow-list.
    rules.push_back(*http::parse_access_rule(false, "all"));
    return http::access_allowed(rules, http::client_address(peer));
}

Outcome receive(int fd, const sockaddr_storage& peer, int timeout_ms, const sigset_t* wait_mask,
                const volatile sig_atomic_t* quit)
{
    Outcome out;
    std::string held;   // consumed bytes: all of them header
    std::int64_t deadline = now_ms() + timeout_ms;
    char buf[kMaxHeader];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf - held.size(), MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) {
            out.error = "connection closed before its PROXY header ended";
            return out;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            out.error = std::string("recv: ") + std::strerror(errno);
            return out;
        }
        if (n < 0) {
            if (!wait_readable(fd, deadline, wait_mask, quit, out.error))
                return out;
            continue;
        }
        std::string bytes = held + std::string(buf, std::size_t(n));
        Parsed p = parse(bytes);
        if (p.state == State::error) {
            out.error = "bad PROXY header: " + p.error;
            return out;
        }
        // Complete: consume up to its end.  Incomplete: every byte seen is
        // header, so take them all and wait for the rest.
        std::size_t take = (p.state == State::complete ? p.consumed : bytes.size()) - held.size();
        if (::recv(fd, buf, take, MSG_DONTWAIT) != ssize_t(take)) {
            out.error = "could not consume the PROXY header";
            return out;
        }
        held.append(buf, take);
        if (p.state == State::incomplete)
            continue;
        out.client = peer;
        if (!p.header.local && !to_sockaddr(p.header, out.client)) {
            out.error = "PROXY header with an unusable address \"" + p.header.source + "\"";
            return out;
        }
        out.ok = true;
        return out;
    }
}

}  // namespace preforkd::proxy
