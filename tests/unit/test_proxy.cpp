// The PROXY protocol parser: v1 lines and v2 blocks in, the client's address
// (or a refusal) out, and "incomplete" for every strict prefix of a header.
#include <criterion/criterion.h>

#include <string>

#include "preforkd/tls/proxy.hpp"

using namespace preforkd::proxy;

namespace {

std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& addresses)
{
    std::string h = "\r\n\r\n";
    h += '\0';
    h += "\r\nQUIT\n";
    h += char(ver_cmd);
    h += char(fam);
    h += char(addresses.size() >> 8);
    h += char(addresses.size() & 0xff);
    return h + addresses;
}

std::string v4_block()
{
    // 192.0.2.7:51000 -> 198.51.100.1:443, then a TLV the parser must skip.
    std::string a = {char(192), 0, 2, 7, char(198), 51, 100, 1};
    a += char(51000 >> 8);
    a += char(51000 & 0xff);
    a += char(443 >> 8);
    a += char(443 & 0xff);
    a += std::string("\x04\x00\x02ok", 5);
    return a;
}

void every_prefix_is_incomplete(const std::string& header)
{
    for (std::size_t n = 0; n < header.size(); ++n)
        cr_assert_eq(parse(header.substr(0, n)).state, State::incomplete,
                     "a %zu-byte prefix was not 'incomplete'", n);
}

}  // namespace

Test(proxy, v1_tcp4_and_tcp6)
{
    std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n";
    Parsed p = parse(line + "GET / HTTP/1.1\r\n");
    cr_assert_eq(p.state, State::complete, "%s", p.error.c_str());
    cr_assert_eq(p.consumed, line.size());
    cr_assert_str_eq(p.header.source.c_str(), "192.0.2.7");
    cr_assert_eq(p.header.source_port, 51000u);
    cr_assert_str_eq(p.header.destination.c_str(), "198.51.100.1");
    cr_assert_eq(p.header.destination_port, 443u);
    cr_assert_eq(p.header.version, 1);
    every_prefix_is_incomplete(line);

    p = parse("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
    cr_assert_eq(p.state, State::complete, "%s", p.error.c_str());
    cr_assert_str_eq(p.header.source.c_str(), "2001:db8::7");
}

Test(proxy, v1_unknown_keeps_the_peer)
{
    Parsed p = parse("PROXY UNKNOWN whatever follows\r\nGET");
    cr_assert_eq(p.state, State::complete);
    cr_assert(p.header.local);
    cr_assert_eq(p.consumed, 32u);
}

Test(proxy, v1_malformed_lines_are_refused)
{
    const char* bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 51000\r\n",          // a field missing
        "PROXY TCP4 192.0.2.7  198.51.100.1 51000 443\r\n",     // two spaces
        "PROXY TCP4 2001:db8::7 198.51.100.1 51000 443\r\n",    // v6 under TCP4
        "PROXY TCP6 192.0.2.7 2001:db8::1 51000 443\r\n",       // v4 under TCP6
        "PROXY TCP4 192.0.2 198.51.100.1 51000 443\r\n",        // short address
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",      // port too large
        "PROXY TCP4 192.0.2.7 198.51.100.1 051000 443\r\n",     // leading zero
        "PROXY UDP4 192.0.2.7 198.51.100.1 51000 443\r\n",      // not TCP
        "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\n",        // bare LF
        "GET / HTTP/1.1\r\n",                                   // no header at all
    };
    for (const char* b : bad)
        cr_expect_eq(parse(b).state, State::error, "accepted '%s'", b);
    std::string longline = "PROXY TCP4 " + std::string(120, '1');
    cr_assert_eq(parse(longline).state, State::error, "a line past 107 bytes was not refused");
}

Test(proxy, v2_tcp4_with_a_tlv)
{
    std::string h = v2(0x21, 0x11, v4_block());
    Parsed p = parse(h + "GET / HTTP/1.1\r\n");
    cr_assert_eq(p.state, State::complete, "%s", p.error.c_str());
    cr_assert_eq(p.consumed, h.size());
    cr_assert_str_eq(p.header.source.c_str(), "192.0.2.7");
    cr_assert_eq(p.header.source_port, 51000u);
    cr_assert_eq(p.header.destination_port, 443u);
    cr_assert_eq(p.header.version, 2);
    every_prefix_is_incomplete(h);
}

Test(proxy, v2_tcp6)
{
    std::string a(36, '\0');
    a[0] = char(0x20);
    a[1] = char(0x01);
    a[2] = char(0x0d);
    a[3] = char(0xb8);
    a[15] = 7;
    a[35] = char(80);   // the destination port
    Parsed p = parse(v2(0x21, 0x21, a));
    cr_assert_eq(p.state, State::complete, "%s", p.error.c_str());
    cr_assert_str_eq(p.header.source.c_str(), "2001:db8::7");
    cr_assert_eq(p.header.destination_port, 80u);
}

Test(proxy, v2_local_keeps_the_peer)
{
    Parsed p = parse(v2(0x20, 0x00, ""));
    cr_assert_eq(p.state, State::complete, "%s", p.error.c_str());
    cr_assert(p.header.local);
    cr_assert_eq(p.consumed, 16u);
}

Test(proxy, v2_malformed_blocks_are_refused)
{
    cr_assert_eq(parse(v2(0x11, 0x11, v4_block())).state, State::error, "version 1 in a v2 block");
    cr_assert_eq(parse(v2(0x22, 0x11, v4_block())).state, State::error, "unknown command");
    cr_assert_eq(parse(v2(0x21, 0x11, "short")).state, State::error, "address block too short");
    std::string huge = v2(0x21, 0x11, std::string(2000, 'x'));
    cr_assert_eq(parse(huge).state, State::error, "a header over 1 KiB");
    std::string wrong_signature = v2(0x21, 0x11, v4_block());
    wrong_signature[7] = 'X';
    cr_assert_eq(parse(wrong_signature).state, State::error, "a wrong signature");
}
