// fuzz_request.cpp - libFuzzer target for the request-head parser.
//
// The input is what a client could write on a connection.  It is walked the
// way the connection loop walks its buffer: parse a head, skip its body with
// BodyDiscarder, parse the next pipelined head, until something is
// incomplete or an error.  Besides the sanitizers' own checks (out-of-bounds
// reads in the string_view walks, integer overflow in Content-Length and
// chunk sizes), the target traps when a promise of the headers breaks:
// consumed counts stay within the input, a complete head ends in CRLF CRLF,
// every prefix of a complete head is incomplete (so a slow client is never
// answered differently from a fast one), an error has a status the loop can
// send, and first_line() yields no control bytes for the log.  Tiny limits
// are tried too, so the 414/431 paths get their share of inputs.  Each
// complete head's version is one that is served as 1.0 or 1.1, its path
// decodes to no control byte (so nothing a listing leaves out can be
// named), and a Range field is planned against a few sizes: every span
// lies inside the representation, in ascending order, apart from the next.
// A Request reused from head to head, as the connection loop reuses it,
// must read as a fresh one.
//
// Build: see the fuzz block at the end of the top-level Makefile.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "preforkd/http/body.hpp"
#include "preforkd/http/path.hpp"
#include "preforkd/http/range.hpp"
#include "preforkd/http/request.hpp"

using namespace preforkd::http;

namespace {

void require(bool ok)
{
    if (!ok) __builtin_trap();
}

bool sendable_error(int status)
{
    return status == 400 || status == 414 || status == 431 || status == 505;
}

void check_complete(std::string_view data, const ParseResult& p, const Request& r,
                    const Limits& limits)
{
    require(p.consumed >= 4 && p.consumed <= data.size() && p.consumed <= limits.max_header_size);
    require(data.substr(p.consumed - 4, 4) == "\r\n\r\n");
    require(!r.method.empty() && !r.path.empty());
    require(!(r.chunked && r.content_length > 0));
    require(r.request_line.find_first_of("\r\n") == std::string::npos);
    // A slow client sending the same bytes must not get another answer.
    Request again;
    require(parse(data.substr(0, p.consumed - 1), limits, again).state == ParseState::incomplete);
}

void check_ranges(std::string_view value)
{
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10},
                               std::uint64_t{INT64_MAX}}) {   // st_size is an off_t
        RangePlan plan = plan_ranges(value, size, 8);
        require((plan.kind == RangeKind::partial) == !plan.spans.empty());
        std::uint64_t end = 0;   // one past the previous span
        for (const ByteSpan& s : plan.spans) {
            require(s.length > 0 && s.first < size && s.length <= size - s.first);
            require(&s == &plan.spans.front() || s.first > end);
            end = s.first + s.length;
        }
    }
}

void check_request(const Request& r)
{
    require(r.version_major == 1 && (r.version_minor == 0 || r.version_minor == 1));
    if (std::optional<std::string> decoded = percent_decode(r.path))
        for (unsigned char c : *decoded) require(c >= 0x20 && c != 0x7f);
    if (r.has_header("Range")) check_ranges(r.header("Range"));
}

bool same(const Request& a, const Request& b)
{
    if (a.headers.size() != b.headers.size()) return false;
    for (std::size_t i = 0; i < a.headers.size(); ++i)
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
            return false;
    return a.method == b.method && a.target == b.target && a.path == b.path &&
           a.query == b.query && a.version_major == b.version_major &&
           a.version_minor == b.version_minor && a.request_line == b.request_line &&
           a.content_length == b.content_length && a.chunked == b.chunked && a.host == b.host;
}

// Parses pipelined requests from `data`; returns how many were complete.
// The connection loop parses every head of a connection into one Request,
// which keeps its storage: `reused` does the same, and must always read as
// the fresh Request parsed from the same bytes.
int walk(std::string_view data, const Limits& limits)
{
    int complete = 0;
    Request reused;
    while (!data.empty() && complete < 32) {
        Request r;
        ParseResult p = parse(data, limits, r);
        ParseResult q = parse(data, limits, reused);
        require(q.state == p.state && q.consumed == p.consumed && q.status == p.status);
        if (p.state == ParseState::error) require(sendable_error(p.status) && !p.reason.empty());
        if (p.state != ParseState::complete) break;
        require(same(r, reused));
        check_complete(data, p, r, limits);
        check_request(r);
        ++complete;
        data.remove_prefix(p.consumed);
        BodyDiscarder body(r, limits.max_discard_body);
        DiscardResult d = body.feed(data);
        require(d.consumed <= data.size());
        if (d.state != DiscardState::done) break;
        data.remove_prefix(d.consumed);
    }
    return complete;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size)
{
    std::string_view data(reinterpret_cast<const char*>(bytes), size);
    std::string line = first_line(data);
    for (char c : line) require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    walk(data, Limits{});
    Limits tiny;
    tiny.max_header_size = 64;
    tiny.max_headers = 3;
    tiny.max_discard_body = 16;
    walk(data, tiny);
    return 0;
}
