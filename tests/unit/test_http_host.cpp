// test_http_host.cpp - Host validation and the name sites are matched on.
//
// The cases are the ones a client meets: the forms issue 10 names as 400
// (also as absolute-form authorities, through the real parser), and the
// ordinary forms that must keep working.
#include <criterion/criterion.h>

#include <string>

#include "preforkd/http/host.hpp"
#include "preforkd/http/request.hpp"

using namespace preforkd::http;

namespace {

const char* const kGood[] = {
    "localhost", "localhost:80", "example.org", "WWW.Example.ORG.", "a-b.example:8080",
    "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:8080", "[4712::abcd]", "host:",
    "xn--bcher-kva.example", "%41.example",
};

const char* const kBad[] = {
    "", "localhost:80x", "[4712::abcd::]", "4714::abcd:8001", ":80:80", ":80", "a/b",
    "a b", "[::1", "[]", "[::1]x", "[v1.x]", "a:80:80", "%4", "%zz.example", "a@b", "[::1]:8x",
};

int parse_status(const std::string& raw)
{
    Request r;
    ParseResult p = parse(raw, Limits{}, r);
    return p.state == ParseState::complete ? 0 : p.status;
}

}  // namespace

Test(http_host, accepts_hosts_clients_send)
{
    for (const char* h : kGood) cr_expect(valid_authority(h), "refused \"%s\"", h);
}

Test(http_host, refuses_malformed_hosts)
{
    for (const char* h : kBad) cr_expect(!valid_authority(h), "accepted \"%s\"", h);
}

Test(http_host, malformed_host_field_is_400)
{
    for (const char* h : kBad) {
        std::string raw = std::string("GET / HTTP/1.1\r\nHost: ") + h + "\r\n\r\n";
        cr_expect_eq(parse_status(raw), 400, "Host \"%s\" gave %d", h, parse_status(raw));
    }
}

Test(http_host, malformed_absolute_form_authority_is_400)
{
    for (const char* h : kBad) {
        // With a '/' the authority ends earlier: "http://a/b/" is host "a".
        if (std::string(h).find('/') != std::string::npos) continue;
        std::string raw = std::string("GET http://") + h + "/ HTTP/1.1\r\nHost: a\r\n\r\n";
        cr_expect_eq(parse_status(raw), 400, "authority \"%s\" gave %d", h, parse_status(raw));
    }
}

Test(http_host, good_hosts_parse)
{
    for (const char* h : kGood) {
        std::string raw = std::string("GET / HTTP/1.1\r\nHost: ") + h + "\r\n\r\n";
        cr_expect_eq(parse_status(raw), 0, "Host \"%s\" gave %d", h, parse_status(raw));
    }
}

Test(http_host, http10_without_host_still_parses)
{
    cr_expect_eq(parse_status("GET / HTTP/1.0\r\n\r\n"), 0);
}

Test(http_host, name_is_lower_case_without_port_or_trailing_dot)
{
    cr_expect_eq(host_name("WWW.Example.ORG.:8080"), "www.example.org");
    cr_expect_eq(host_name("example.org"), "example.org");
    cr_expect_eq(host_name("example.org."), "example.org");
    cr_expect_eq(host_name("[::1]:80"), "[::1]");
    cr_expect_eq(host_name("[ABCD::1]"), "[abcd::1]");
    cr_expect_eq(host_name("10.0.0.1:8080"), "10.0.0.1");
    cr_expect_eq(host_name("host:"), "host");
}
