// test_http_request.cpp - the request-head parser, as a client meets it.
//
// Requests are raw bytes in, a status or a filled Request out.  The tables
// hold every rejection the server promises (DESIGN.md section 5) with the
// status a client would see; each row is also fed one byte at a time, the
// way a slow client sends it, and must end the same way.
#include <criterion/criterion.h>

#include <string>
#include <string_view>

#include "preforkd/http/request.hpp"

using namespace preforkd::http;
using namespace std::string_literals;

namespace {

struct Case {
    const char* what;
    std::string raw;
    int status;   // 0: a complete request
};

const Case kValid[] = {
    {"simple HTTP/1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    {"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", 0},
    {"absolute-form", "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", 0},
    {"absolute-form without path", "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", 0},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    {"unknown method token", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    {"obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 0},
    {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", 0},
    {"Host with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0},
    {"Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0},
    {"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0},
    {"absolute-form, Host disagrees", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
     0},
    // RFC 9110 2.5, 6.2: a higher minor version is served as HTTP/1.1
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0},
    {"HTTP/1.9 chunked", "POST / HTTP/1.9\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
    {"absolute-form, HTTP/1.0 without Host", "GET http://a.example/x HTTP/1.0\r\n\r\n", 0},
    {"absolute-form, IPv6 literal", "GET http://[::1]:8080/ HTTP/1.1\r\nHost: x\r\n\r\n", 0},
};

const Case kInvalid[] = {
    // line endings
    {"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"bare LF after a header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
    {"bare LF as the final line", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"bare LF before the request", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"bare CR inside a header", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},
    {"bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // request line
    {"non-token method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"no version", "GET /\r\nHost: a\r\n\r\n", 400},
    {"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"two-digit version", "GET / HTTP/11.1\r\nHost: a\r\n\r\n", 400},
    {"version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
    {"garbage line", "HELLO\r\n\r\n", 400},
    {"control char in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s, 400},
    {"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"raw byte in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"asterisk outside OPTIONS", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"authority-form", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"userinfo in target", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"other scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"empty authority", "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"invalid authority", "GET http://a<b>/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"absolute-form still needs Host", "GET http://a/ HTTP/1.1\r\n\r\n", 400},
    {"absolute-form with an invalid Host", "GET http://a/ HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    // header fields
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400},
    {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400},
    {"folded first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    {"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"s, 400},
    {"control char in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b[m\r\n\r\n", 400},
    {"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400},
    {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400},
    {"invalid name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400},
    {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400},
    // framing
    {"Content-Length and Transfer-Encoding",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"duplicate Content-Length",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
    {"Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
    {"negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
    {"hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400},
    {"empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
    {"huge Content-Length",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
    {"Transfer-Encoding not chunked last",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
    {"Transfer-Encoding in HTTP/1.0",
     "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    // Host
    {"missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
    {"Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    // versions
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
    {"HTTP/2.1", "GET / HTTP/2.1\r\nHost: a\r\n\r\n", 505},
    {"HTTP/9.9", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505},
    {"HTTP/1.2 without Host", "GET / HTTP/1.2\r\n\r\n", 400},   // served as 1.1: Host needed
    {"HTTP/1.9 with Transfer-Encoding and Content-Length",
     "POST / HTTP/1.9\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400},
    {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
};

std::string repeated(std::string_view s, int n)
{
    std::string out;
    while (n-- > 0) out += s;
    return out;
}

Limits small_limits()
{
    Limits l;
    l.max_header_size = 64;
    l.max_headers = 3;
    return l;
}

const Case kTooLarge[] = {
    {"request line over the limit", "GET /" + std::string(80, 'a') + " HTTP/1.1\r\n\r\n", 414},
    {"request line over the limit, no end yet", "GET /" + std::string(80, 'a'), 414},
    {"empty lines over the limit", repeated("\r\n", 40), 414},
    {"head over the limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(60, 'b') + "\r\n\r\n",
     431},
    {"too many fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431},
};

ParseResult parse_all(std::string_view raw, const Limits& limits = Limits{})
{
    Request r;
    return parse(raw, limits, r);
}

// Feeds one more byte per call, as a slow client would; stops at the first
// answer that is not "incomplete".
ParseResult parse_bytewise(std::string_view raw, const Limits& limits = Limits{})
{
    ParseResult res;
    for (std::size_t n = 0; n <= raw.size(); ++n) {
        Request r;
        res = parse(raw.substr(0, n), limits, r);
        if (res.state != ParseState::incomplete) break;
    }
    return res;
}

void expect_outcome(const Case& c, const ParseResult& res, const char* how)
{
    if (c.status == 0) {
        cr_expect(res.state == ParseState::complete, "%s (%s): not complete, status %d %s",
                  c.what, how, res.status, res.reason.c_str());
        cr_expect_eq(res.consumed, c.raw.size(), "%s (%s): consumed %zu of %zu", c.what, how,
                     res.consumed, c.raw.size());
    } else {
        cr_expect(res.state == ParseState::error, "%s (%s): accepted", c.what, how);
        cr_expect_eq(res.status, c.status, "%s (%s): status %d, expected %d (%s)", c.what, how,
                     res.status, c.status, res.reason.c_str());
    }
}

Request parsed(std::string_view raw)
{
    Request r;
    ParseResult res = parse(raw, Limits{}, r);
    cr_assert(res.state == ParseState::complete, "not complete: %d %s", res.status,
              res.reason.c_str());
    return r;
}

}  // namespace

Test(http_request, valid_requests_are_complete)
{
    for (const Case& c : kValid) expect_outcome(c, parse_all(c.raw), "whole");
}

Test(http_request, every_rejection_has_its_status)
{
    for (const Case& c : kInvalid) expect_outcome(c, parse_all(c.raw), "whole");
}

Test(http_request, oversized_heads_get_414_or_431)
{
    for (const Case& c : kTooLarge) expect_outcome(c, parse_all(c.raw, small_limits()), "whole");
}

Test(http_request, byte_by_byte_gives_the_same_answer)
{
    for (const Case& c : kValid) expect_outcome(c, parse_bytewise(c.raw), "bytewise");
    for (const Case& c : kInvalid) expect_outcome(c, parse_bytewise(c.raw), "bytewise");
    for (const Case& c : kTooLarge)
        expect_outcome(c, parse_bytewise(c.raw, small_limits()), "bytewise");
}

Test(http_request, fields_of_a_request)
{
    Request r = parsed("GET /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\n"
                       "Accept:  text/html \t\r\nX-Empty:\r\n\r\n");
    cr_expect_eq(r.method, "GET");
    cr_expect_eq(r.target, "/a%20b/c?x=1&y=2");
    cr_expect_eq(r.path, "/a%20b/c");
    cr_expect_eq(r.query, "x=1&y=2");
    cr_expect_eq(r.version_major, 1);
    cr_expect_eq(r.version_minor, 1);
    cr_expect_eq(r.request_line, "GET /a%20b/c?x=1&y=2 HTTP/1.1");
    cr_assert_eq(r.headers.size(), 3u);
    cr_expect_eq(r.headers[1].name, "Accept");
    cr_expect_eq(r.headers[1].value, "text/html", "value is trimmed: [%s]",
                 r.headers[1].value.c_str());
    cr_expect_eq(r.header("host"), "example.com", "lookup ignores case");
    cr_expect_eq(r.header("x-empty"), "");
    cr_expect(r.has_header("X-EMPTY"));
    cr_expect_not(r.has_header("Missing"));
}

// The connection loop parses every request of a connection into the same
// Request: nothing of the one before may show through, and the second
// takes no new storage where the first left enough.
Test(http_request, a_reused_request_holds_only_the_new_one)
{
    Request r;
    std::string first =
        "POST http://example.com/a/long/path/to/a/file.html?query=string HTTP/1.1\r\n"
        "Host: x\r\nContent-Length: 5\r\nAccept: text/html,application/xhtml+xml\r\n"
        "User-Agent: a-client-with-a-long-name/1.0\r\n\r\n";
    cr_assert(parse(first, Limits{}, r).state == ParseState::complete);
    cr_assert_eq(r.headers.size(), 4u);
    cr_expect_eq(r.host, "example.com");
    cr_expect_eq(r.content_length, 5u);
    const char* line_storage = r.request_line.data();
    const Header* headers_storage = r.headers.data();

    std::string second = "GET /b HTTP/1.0\r\nX-Only: 1\r\n\r\n";
    cr_assert(parse(second, Limits{}, r).state == ParseState::complete);
    cr_expect_eq(r.method, "GET");
    cr_expect_eq(r.target, "/b");
    cr_expect_eq(r.path, "/b");
    cr_expect_eq(r.query, "");
    cr_expect_eq(r.version_minor, 0);
    cr_expect_eq(r.request_line, "GET /b HTTP/1.0");
    cr_expect_eq(r.host, "", "HTTP/1.0 without Host: no host from the request before");
    cr_expect_eq(r.content_length, 0u, "no Content-Length from the request before");
    cr_expect_not(r.has_body());
    cr_assert_eq(r.headers.size(), 1u);
    cr_expect_eq(r.headers[0].name, "X-Only");
    cr_expect_eq(r.headers[0].value, "1");
    cr_expect_not(r.has_header("Accept"));
    cr_expect_eq(r.request_line.data(), line_storage, "the request line kept its storage");
    cr_expect_eq(r.headers.data(), headers_storage, "the header list kept its storage");

    std::string third = "PUT /c HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\nB: 2\r\n\r\n";
    cr_assert(parse(third, Limits{}, r).state == ParseState::complete);
    cr_expect(r.chunked);
    cr_expect_eq(r.host, "y");
    cr_expect_eq(r.version_minor, 1);
    cr_assert_eq(r.headers.size(), 3u);
    cr_expect_eq(r.headers[2].name, "B");
    cr_expect_eq(r.headers[2].value, "2");
}

Test(http_request, higher_minor_versions_are_served_as_1_1)
{
    for (const char* v : {"HTTP/1.2", "HTTP/1.5", "HTTP/1.9"}) {
        Request r = parsed(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n");
        cr_expect_eq(r.version_major, 1, "%s", v);
        cr_expect_eq(r.version_minor, 1, "%s is served as HTTP/1.1", v);
        cr_expect(r.wants_keep_alive(), "%s keeps the connection as 1.1 does", v);
        cr_expect_eq(r.request_line, std::string("GET / ") + v, "the log shows what was sent");
    }
    cr_expect_eq(parsed("GET / HTTP/1.0\r\n\r\n").version_minor, 0);
}

Test(http_request, absolute_form_serves_its_path)
{
    Request r = parsed("GET HTTP://example.com:8080/dir/f.txt?v=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect_eq(r.path, "/dir/f.txt");
    cr_expect_eq(r.query, "v=2");
    cr_expect_eq(parsed("GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n").path, "/");
    cr_expect_eq(parsed("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").path, "*");
}

Test(http_request, pipelined_requests_are_parsed_one_after_the_other)
{
    std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
    std::string second = "HEAD /two HTTP/1.1\r\nHost: a\r\n\r\n";
    std::string buffer = first + second;
    Request r;
    ParseResult res = parse(buffer, Limits{}, r);
    cr_assert(res.state == ParseState::complete);
    cr_expect_eq(res.consumed, first.size(), "consumed must point at the second request");
    cr_expect_eq(r.path, "/one");
    res = parse(std::string_view(buffer).substr(res.consumed), Limits{}, r);
    cr_assert(res.state == ParseState::complete);
    cr_expect_eq(res.consumed, second.size());
    cr_expect_eq(r.method, "HEAD");
    cr_expect_eq(r.path, "/two");
}

Test(http_request, unfinished_heads_ask_for_more)
{
    const char* partial[] = {"", "\r", "\r\n", "GET", "GET / HTTP/1.1", "GET / HTTP/1.1\r",
                             "GET / HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r"};
    for (const char* p : partial)
        cr_expect(parse_all(p).state == ParseState::incomplete, "[%s] is not incomplete", p);
}

Test(http_request, a_bad_request_line_is_rejected_before_the_head_ends)
{
    // A client that sends garbage and waits gets its 400 now, not a 408.
    ParseResult res = parse_all("HELLO WORLD\r\n");
    cr_expect(res.state == ParseState::error);
    cr_expect_eq(res.status, 400);
}

Test(http_request, a_head_exactly_at_the_limit_is_accepted)
{
    std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    Limits l;
    l.max_header_size = head.size();
    cr_expect(parse_all(head, l).state == ParseState::complete);
    l.max_header_size = head.size() - 1;
    cr_expect_eq(parse_all(head, l).status, 431);
    l = Limits{};
    l.max_headers = 1;
    cr_expect(parse_all(head, l).state == ParseState::complete);
}

Test(http_request, leading_empty_lines_count_as_consumed)
{
    std::string raw = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    Request r;
    ParseResult res = parse(raw, Limits{}, r);
    cr_assert(res.state == ParseState::complete);
    cr_expect_eq(res.consumed, raw.size());
    cr_expect_eq(r.request_line, "GET / HTTP/1.1");
}

Test(http_request, first_line_names_a_stuck_request)
{
    cr_expect_eq(first_line("GET /slow HTTP/1.1"), "", "no line until it is complete");
    cr_expect_eq(first_line("GET /slow HTTP/1.1\r\nHost:"), "GET /slow HTTP/1.1");
    cr_expect_eq(first_line("\r\n\r\nGET / HTTP/1.0\r\n"), "GET / HTTP/1.0");
    cr_expect_eq(first_line("GET /" + std::string(500, 'x') + " HTTP/1.1\r\n", 20),
                 "GET /xxxxxxxxxxxxxxx");
    cr_expect_eq(first_line("GET /\x1b[31m HTTP/1.1\r\n"), "GET /?[31m HTTP/1.1",
                 "control characters never reach the log");
}

Test(http_request, keep_alive_by_version_and_connection)
{
    struct {
        const char* raw;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
    };
    for (const auto& c : cases)
        cr_expect_eq(parsed(c.raw).wants_keep_alive(), c.keep, "%s", c.raw);
}

Test(http_request, body_framing_is_exposed)
{
    struct {
        const char* raw;
        std::uint64_t length;
        bool chunked;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, false},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0, false},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", 42, false},
        {"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 007\r\n\r\n", 7, false},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
         999999999999999999ull, false},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, true},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,CHUNKED\r\n\r\n", 0, true},
        {"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n", 3, false},
    };
    for (const auto& c : cases) {
        Request r = parsed(c.raw);
        cr_expect_eq(r.content_length, c.length, "%s", c.raw);
        cr_expect_eq(r.chunked, c.chunked, "%s", c.raw);
        cr_expect_eq(r.has_body(), c.chunked || c.length > 0, "%s", c.raw);
    }
}

Test(http_request, absolute_form_authority_replaces_host)
{
    struct {
        const char* raw;
        const char* host;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example"},
        {"GET / HTTP/1.0\r\n\r\n", ""},
        {"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", "a.example"},
        {"GET http://a.example:81/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example:81"},
        {"GET HTTPS://[::1]:8443/ HTTP/1.1\r\nHost: x\r\n\r\n", "[::1]:8443"},
        {"GET http://a.example/ HTTP/1.0\r\n\r\n", "a.example"},
    };
    for (const auto& c : cases) {
        Request r = parsed(c.raw);
        cr_expect_eq(r.host, c.host, "%s: host [%s]", c.raw, r.host.c_str());
        if (r.has_header("Host"))
            cr_expect_eq(r.header("Host"), c.host, "%s: Host field agrees", c.raw);
        int hosts = 0;
        for (const Header& h : r.headers) hosts += iequals(h.name, "Host");
        cr_expect_leq(hosts, 1, "%s: never two Host fields", c.raw);
    }
    Request added = parsed("GET http://a.example/ HTTP/1.0\r\n\r\n");
    cr_expect_eq(added.header("Host"), "a.example", "HTTP/1.0 gets the authority as Host");
}
