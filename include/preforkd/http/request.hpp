// http/request.hpp - an incremental HTTP/1.x request-head parser over bytes.
//
// The parser does no I/O: the connection loop appends whatever it read to a
// buffer and calls parse() on the unconsumed part.  It either needs more
// bytes, or returns a complete Request with the number of bytes consumed, or
// an error status (400, 414, 431, 505) after which the connection must be
// closed.  The parser reads heads only: a request body (its framing is in
// Request::content_length and Request::chunked) is for http::BodyDiscarder
// (body.hpp) to skip before the next head is parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::http {

struct Header {
    std::string name;    // as received
    std::string value;   // leading/trailing whitespace removed
};

struct Request {
    std::string method;          // "GET"
    std::string target;          // raw request-target "/a%20b?x=1"
    std::string path;            // target path before '?', still percent-encoded
    std::string query;           // after '?', without it
    int version_major = 1;
    int version_minor = 1;       // 0 or 1: HTTP/1.2 to 1.9 are served as 1.1
    std::vector<Header> headers;
    std::string request_line;    // "GET /a HTTP/1.1", for logs and the scoreboard

    // The body's framing (RFC 9112 6.3), already checked: never both.
    std::uint64_t content_length = 0;   // Content-Length, 0 when absent
    bool chunked = false;               // Transfer-Encoding ending in chunked

    // The authority the request is for.  RFC 9112 3.2.2: with an
    // absolute-form target the target's authority wins, and the Host field
    // (which must still be present and valid in HTTP/1.1) is replaced by it
    // in `headers` too, so header("Host") agrees.  Otherwise the Host value;
    // "" for HTTP/1.0 without Host.
    std::string host;

    bool has_body() const noexcept { return chunked || content_length > 0; }
    // "Expect: 100-continue": the client may hold its body back until it
    // hears from us, so the body may or may not follow our final answer.
    bool expects_continue() const noexcept;

    // First value of a header, case-insensitive name; empty if absent.
    std::string_view header(std::string_view name) const noexcept;
    bool has_header(std::string_view name) const noexcept;
    // Keep-alive by version and Connection header.
    bool wants_keep_alive() const noexcept;
};

struct Limits {
    std::size_t max_header_size = 8192;  // whole head, request line included
    std::size_t max_headers = 100;
    // Not used by parse(): the most bytes of an unwanted request body the
    // connection loop reads and throws away (BodyDiscarder) before it gives
    // up and closes instead.  Here because it travels with the other limits.
    std::uint64_t max_discard_body = 64 * 1024;
};

enum class ParseState { incomplete, complete, error };

struct ParseResult {
    ParseState state = ParseState::incomplete;
    std::size_t consumed = 0;   // bytes of the head, when complete
    int status = 0;             // HTTP error status when state == error
    std::string reason;         // short text for logs when error
};

// Parses one request head from the start of `data`.  Call again with more
// bytes (from the same start) while it says incomplete.  Leading empty lines
// (CRLF) before a request line are skipped, as RFC 9112 section 2.2 allows.
// `out` is filled on complete.
ParseResult parse(std::string_view data, const Limits& limits, Request& out);

// Case-insensitive ASCII comparison, for header names and tokens.
bool iequals(std::string_view a, std::string_view b) noexcept;

// The request line alone, once a full line is present ("" until then); used
// to name a request stuck before its head is complete.
std::string first_line(std::string_view data, std::size_t max = 200);

}  // namespace preforkd::http
