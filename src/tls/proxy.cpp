// tls/proxy.cpp - PROXY protocol v1 and v2 headers, parsed from bytes.
//
// Version 1 is checked field by field against the specification's grammar:
// one space between fields, numeric addresses of the family named, ports
// 0-65535 without leading zeros, CRLF within 107 bytes.  inet_pton() does
// the address syntax, so "1.2.3" or "::g" are refused as the kernel would.
// Version 2 is checked for its signature, version 2, a known command and a
// length that covers the address block of its family.  Either way the
// addresses come back as text, the form logs and allow/deny use.
#include "preforkd/tls/proxy.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <vector>

namespace preforkd::proxy {
namespace {

constexpr std::string_view kV1 = "PROXY ";
constexpr std::size_t kV1Max = 107;
constexpr unsigned char kV2Signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                             0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

Parsed failed(std::string why)
{
    Parsed p;
    p.state = State::error;
    p.error = std::move(why);
    return p;
}

// True while `bytes` could still be the start of `prefix`.
bool could_start(std::string_view bytes, std::string_view prefix)
{
    std::size_t n = std::min(bytes.size(), prefix.size());
    return bytes.substr(0, n) == prefix.substr(0, n);
}

std::vector<std::string_view> split_spaces(std::string_view line)
{
    std::vector<std::string_view> fields;
    std::size_t pos = 0;
    while (pos <= line.size()) {
        std::size_t sp = line.find(' ', pos);
        if (sp == std::string_view::npos)
            sp = line.size();
        fields.push_back(line.substr(pos, sp - pos));
        pos = sp + 1;
    }
    return fields;
}

bool parse_port(std::string_view s, unsigned& out)
{
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + unsigned(ch - '0');
    }
    out = v;
    return v <= 65535;
}

bool parse_address(std::string_view s, int family)
{
    char text[64];
    if (s.empty() || s.size() >= sizeof text)
        return false;
    std::memcpy(text, s.data(), s.size());
    text[s.size()] = '\0';
    unsigned char buf[16];
    return ::inet_pton(family, text, buf) == 1;
}

Parsed parse_v1(std::string_view bytes)
{
    std::size_t lf = bytes.find('\n');
    if (lf != std::string_view::npos && (lf == 0 || bytes[lf - 1] != '\r'))
        return failed("PROXY v1 line ends in a bare LF");
    std::size_t end = bytes.find("\r\n");
    if (end == std::string_view::npos)
        return bytes.size() >= kV1Max ? failed("PROXY v1 line longer than 107 bytes")
                                      : Parsed{};
    if (end + 2 > kV1Max)
        return failed("PROXY v1 line longer than 107 bytes");
    std::vector<std::string_view> f = split_spaces(bytes.substr(0, end));
    Parsed p;
    p.state = State::complete;
    p.consumed = end + 2;
    p.header.version = 1;
    if (f.size() >= 2 && f[1] == "UNKNOWN") {
        p.header.local = true;   // the rest of the line is to be ignored
        return p;
    }
    if (f.size() != 6 || (f[1] != "TCP4" && f[1] != "TCP6"))
        return failed("PROXY v1: want \"PROXY TCP4|TCP6 src dst sport dport\"");
    int family = f[1] == "TCP4" ? AF_INET : AF_INET6;
    if (!parse_address(f[2], family) || !parse_address(f[3], family))
        return failed("PROXY v1: an address is not a " + std::string(f[1]) + " address");
    if (!parse_port(f[4], p.header.source_port) || !parse_port(f[5], p.header.destination_port))
        return failed("PROXY v1: a port is not 0-65535");
    p.header.source = f[2];
    p.header.destination = f[3];
    return p;
}

std::string address_text(int family, const unsigned char* raw)
{
    char text[INET6_ADDRSTRLEN];
    return ::inet_ntop(family, raw, text, sizeof text) ? text : "";
}

unsigned be16(const unsigned char* p)
{
    return unsigned(p[0]) << 8 | p[1];
}

Parsed parse_v2(std::string_view bytes)
{
    auto u = reinterpret_cast<const unsigned char*>(bytes.data());
    if (bytes.size() < 16)
        return {};
    unsigned version = u[12] >> 4, command = u[12] & 0x0f;
    unsigned family = u[13] >> 4, transport = u[13] & 0x0f;
    std::size_t length = be16(u + 14);
    if (version != 2 || command > 1)
        return failed("PROXY v2: unknown version or command");
    if (16 + length > kMaxHeader)
        return failed("PROXY v2: header longer than 1 KiB");
    if (bytes.size() < 16 + length)
        return {};
    Parsed p;
    p.state = State::complete;
    p.consumed = 16 + length;
    p.header.version = 2;
    // LOCAL, or a family or transport not carried over TCP: keep the peer.
    if (command == 0 || transport != 1 || (family != 1 && family != 2)) {
        p.header.local = true;
        return p;
    }
    const unsigned char* a = u + 16;
    std::size_t size = family == 1 ? 4 : 16;
    if (length < 2 * size + 4)
        return failed("PROXY v2: address block shorter than its family needs");
    int af = family == 1 ? AF_INET : AF_INET6;
    p.header.source = address_text(af, a);
    p.header.destination = address_text(af, a + size);
    p.header.source_port = be16(a + 2 * size);
    p.header.destination_port = be16(a + 2 * size + 2);
    return p;
}

}  // namespace

Parsed parse(std::string_view bytes)
{
    std::string_view v2(reinterpret_cast<const char*>(kV2Signature), sizeof kV2Signature);
    if (bytes.empty())
        return {};
    if (could_start(bytes, kV1))
        return bytes.size() < kV1.size() ? Parsed{} : parse_v1(bytes);
    if (could_start(bytes, v2))
        return bytes.size() < v2.size() ? Parsed{} : parse_v2(bytes);
    return failed("no PROXY protocol header");
}

}  // namespace preforkd::proxy
