// test_http_body.cpp - skipping request bodies, as the connection loop will.
//
// Each row is the bytes that follow a request head - a body and then,
// usually, the next pipelined request - with the framing the head announced.
// The discarder must stop exactly where the body ends (so the next request
// is parsed from its first byte) or report an error, whether the bytes come
// in one piece, one byte at a time, or split at every possible point.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "preforkd/http/body.hpp"

using namespace preforkd::http;
using namespace std::string_literals;

namespace {

constexpr const char* kNext = "GET /next HTTP/1.1\r\n";

struct Case {
    const char* what;
    std::uint64_t content_length;
    bool chunked;
    std::string bytes;
    DiscardState state;   // done, or error (more: the body is unfinished)
    std::size_t body;     // when done: bytes that were body
};

const Case kCases[] = {
    // Content-Length
    {"no body", 0, false, kNext, DiscardState::done, 0},
    {"length", 5, false, "hello"s + kNext, DiscardState::done, 5},
    {"length, unfinished", 10, false, "hello", DiscardState::more, 5},
    {"length over the limit", 100000, false, "x", DiscardState::error, 0},
    // chunked
    {"one chunk", 0, true, "5\r\nhello\r\n0\r\n\r\n"s + kNext, DiscardState::done, 15},
    {"two chunks", 0, true, "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n"s + kNext,
     DiscardState::done, 28},
    {"upper and lower hex", 0, true, "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n",
     DiscardState::done, 36},
    {"leading zeros", 0, true, "0003\r\nabc\r\n000\r\n\r\n", DiscardState::done, 18},
    {"extensions", 0, true, "3;name=value\r\nabc\r\n0 ; last\r\n\r\n", DiscardState::done, 31},
    {"quoted extension", 0, true, "3;n=\"a b\"\r\nabc\r\n0\r\n\r\n", DiscardState::done, 21},
    // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
    {"extension, BWS everywhere it may be", 0, true, "3 \t; a \t=\t b\r\nabc\r\n0\r\n\r\n",
     DiscardState::done, 24},
    {"several extensions", 0, true, "3;a;b=1;c=\"x\"\r\nabc\r\n0;z\r\n\r\n", DiscardState::done,
     27},
    {"quoted-pair and empty quotes", 0, true, "3;a=\"x\\\"y\";b=\"\"\r\nabc\r\n0\r\n\r\n",
     DiscardState::done, 27},
    {"obs-text in a quoted value", 0, true, "3;a=\"caf\xc3\xa9\"\r\nabc\r\n0\r\n\r\n",
     DiscardState::done, 23},
    {"trailer fields", 0, true, "1\r\nx\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n"s + kNext,
     DiscardState::done, 27},
    {"empty body", 0, true, "0\r\n\r\n"s + kNext, DiscardState::done, 5},
    {"unfinished chunk", 0, true, "5\r\nhel", DiscardState::more, 6},
    {"unfinished trailer", 0, true, "0\r\nX: 1\r\n", DiscardState::more, 9},
    {"data with CRLF inside", 0, true, "4\r\n\r\n\r\n\r\n0\r\n\r\n", DiscardState::done, 14},
    // malformed chunked
    {"no size", 0, true, "\r\nabc\r\n", DiscardState::error, 0},
    {"non-hex size", 0, true, "g\r\n", DiscardState::error, 0},
    {"0x prefix", 0, true, "0x5\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"negative size", 0, true, "-5\r\n", DiscardState::error, 0},
    {"space before size", 0, true, " 5\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"bare LF after size", 0, true, "5\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"bare CR after size", 0, true, "5\rhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"bare LF after data", 0, true, "5\r\nhello\n0\r\n\r\n", DiscardState::error, 0},
    {"data longer than size", 0, true, "3\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"bare LF at the end", 0, true, "0\r\n\n", DiscardState::error, 0},
    {"LF in extension", 0, true, "3;a\nb\r\nabc\r\n0\r\n\r\n", DiscardState::error, 0},
    {"NUL in extension", 0, true, "3;a\0b\r\nabc\r\n0\r\n\r\n"s, DiscardState::error, 0},
    {"obs-fold in trailer", 0, true, "0\r\nX: 1\r\n 2\r\n\r\n", DiscardState::error, 0},
    {"control byte in trailer", 0, true, "0\r\nX: \x01\r\n\r\n", DiscardState::error, 0},
    {"bare LF ending a trailer", 0, true, "0\r\nX: 1\n\r\n", DiscardState::error, 0},
    {"size overflows 64 bits", 0, true, "10000000000000000\r\n", DiscardState::error, 0},
    {"size overflows, zero-padded", 0, true, "0000FFFFFFFFFFFFFFFF0\r\n", DiscardState::error, 0},
    {"no CRLF after data", 0, true, "5\r\nhello0\r\n\r\n", DiscardState::error, 0},
    {"LF alone after data", 0, true, "5\r\nhello\n\r\n0\r\n\r\n", DiscardState::error, 0},
    {"bare LF in the last chunk line", 0, true, "0\n\r\n", DiscardState::error, 0},
    // malformed chunk extensions
    {"extension without a name", 0, true, "5;\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"extension without a semicolon", 0, true, "2 erfrferferf\r\nhi\r\n0\r\n\r\n",
     DiscardState::error, 0},
    {"whitespace before the CR", 0, true, "5 \r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"whitespace after an extension", 0, true, "5;a \r\nhello\r\n0\r\n\r\n", DiscardState::error,
     0},
    {"empty extension value", 0, true, "5;a=\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"value without a name", 0, true, "5;=b\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"empty extension after one", 0, true, "5;a;\r\nhello\r\n0\r\n\r\n", DiscardState::error,
     0},
    {"two words in a name", 0, true, "5;a b\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"two words in a value", 0, true, "5;a=b c\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"two equals signs", 0, true, "5;a=b=c\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"separator in a name", 0, true, "5;a@b\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"comma for semicolon", 0, true, "5,a\r\nhello\r\n0\r\n\r\n", DiscardState::error, 0},
    {"text after a quoted value", 0, true, "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
     DiscardState::error, 0},
    {"unterminated quoted value", 0, true, "5;a=\"x\r\nhello\r\n0\r\n\r\n", DiscardState::error,
     0},
    {"control byte in a quoted value", 0, true, "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
     DiscardState::error, 0},
    {"CR escaped in a quoted value", 0, true, "5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n",
     DiscardState::error, 0},
    {"semicolon in the last chunk only", 0, true, "0;\r\n\r\n", DiscardState::error, 0},
    {"chunk over the limit", 0, true, "10000\r\n", DiscardState::error, 0},
};

constexpr std::uint64_t kLimit = 4096;

// Feeds `bytes` in pieces cut at `cuts` (ascending offsets), the way reads
// would deliver them; returns the final state and the total consumed.
DiscardResult feed_in_pieces(const Case& c, const std::vector<std::size_t>& cuts)
{
    BodyDiscarder d(c.content_length, c.chunked, kLimit);
    std::string_view all = c.bytes;
    std::size_t pos = 0, consumed = 0;
    DiscardResult r;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        std::size_t end = i < cuts.size() ? cuts[i] : all.size();
        // As the loop does: the unconsumed rest stays in front of new bytes.
        r = d.feed(all.substr(pos, end - pos));
        consumed += r.consumed;
        pos += r.consumed;
        if (r.state != DiscardState::more) break;
        cr_assert_eq(pos, end, "%s: more, but not everything consumed", c.what);
    }
    r.consumed = consumed;
    return r;
}

void expect(const Case& c, const DiscardResult& r, const char* how)
{
    cr_expect_eq(r.state, c.state, "%s (%s): state %d, reason %s", c.what, how,
                 static_cast<int>(r.state), r.reason);
    if (c.state != DiscardState::error)
        cr_expect_eq(r.consumed, c.body, "%s (%s): consumed %zu, expected %zu", c.what, how,
                     r.consumed, c.body);
    else
        cr_expect_neq(std::string(r.reason), "", "%s: an error has a reason", c.what);
}

}  // namespace

Test(http_body, whole_buffer)
{
    for (const Case& c : kCases) expect(c, feed_in_pieces(c, {}), "whole");
}

Test(http_body, one_byte_at_a_time)
{
    for (const Case& c : kCases) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < c.bytes.size(); ++i) cuts.push_back(i);
        expect(c, feed_in_pieces(c, cuts), "bytewise");
    }
}

Test(http_body, every_single_split)
{
    for (const Case& c : kCases)
        for (std::size_t at = 1; at < c.bytes.size(); ++at)
            expect(c, feed_in_pieces(c, {at}), "split");
}

Test(http_body, the_limit_counts_framing_too)
{
    std::string body = "5\r\nhello\r\n0\r\n\r\n";   // 15 bytes
    BodyDiscarder exact(0, true, body.size());
    DiscardResult r = exact.feed(body);
    cr_expect_eq(r.state, DiscardState::done);
    cr_expect(exact.finished());
    BodyDiscarder shy(0, true, body.size() - 1);
    cr_expect_eq(shy.feed(body).state, DiscardState::error);
    // Endless zero-padded size lines carry no data but still hit the limit.
    BodyDiscarder padded(0, true, 100);
    cr_expect_eq(padded.feed(std::string(200, '0')).state, DiscardState::error);
    BodyDiscarder length(100, false, 100);
    cr_expect_eq(length.feed(std::string(100, 'x')).state, DiscardState::done);
    cr_expect_eq(BodyDiscarder(101, false, 100).feed("").state, DiscardState::error,
                 "a Content-Length over the limit fails before reading");
}

Test(http_body, finished_and_failed_stay_so)
{
    BodyDiscarder d(3, false, kLimit);
    DiscardResult r = d.feed("abcGET");
    cr_expect_eq(r.state, DiscardState::done);
    cr_expect_eq(r.consumed, 3u);
    r = d.feed("GET / HTTP/1.1");
    cr_expect_eq(r.state, DiscardState::done);
    cr_expect_eq(r.consumed, 0u, "nothing after the body is ever eaten");
    BodyDiscarder bad(0, true, kLimit);
    cr_expect_eq(bad.feed("z").state, DiscardState::error);
    r = bad.feed("0\r\n\r\n");
    cr_expect_eq(r.state, DiscardState::error);
    cr_expect_eq(r.consumed, 0u);
    cr_expect_eq(BodyDiscarder(0, true, kLimit).feed("").state, DiscardState::more);
}

Test(http_body, from_a_parsed_request)
{
    Request req;
    std::string raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\nhi\r\n0\r\n\r\n" +
                      std::string(kNext);
    ParseResult p = parse(raw, Limits{}, req);
    cr_assert(p.state == ParseState::complete);
    BodyDiscarder d(req, Limits{}.max_discard_body);
    DiscardResult r = d.feed(std::string_view(raw).substr(p.consumed));
    cr_assert_eq(r.state, DiscardState::done);
    Request next;
    std::string_view rest = std::string_view(raw).substr(p.consumed + r.consumed);
    cr_expect_eq(rest, kNext);
}
