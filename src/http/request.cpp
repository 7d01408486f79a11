// http/request.cpp - the incremental HTTP/1.x request-head parser.
//
// The parser keeps no state between calls: the connection loop calls parse()
// with everything buffered so far, and the head is walked again from the
// start.  Heads are small (max_header_size, 8 KiB by default) and a read()
// usually brings the whole head, so re-walking is cheaper than carrying a
// resumable state machine, and it cannot go out of step with the buffer.
//
// The walk works on string_views only and allocates nothing; the Request is
// filled once, when the blank line ending the head has arrived.  Each line is
// checked as soon as it is complete, so a garbage request line is answered
// with 400 at once instead of waiting for a timeout.  Only the first
// max_header_size bytes are ever looked at: a head that has not ended by then
// is too large (414 while still in the request line, else 431).
//
// Strictness is deliberate (DESIGN.md section 5): every ambiguity a proxy in
// front of us might resolve differently - bare CR or LF, obs-fold, space
// before the colon, Content-Length with Transfer-Encoding, repeated
// Content-Length or Host - is a 400 and a closed connection.  Rejected: the
// RFC 9112 leniency of accepting bare LF as a line end.
//
// The head's last step records what the rest of the server must not work
// out again: the body framing (content_length, chunked) that BodyDiscarder
// needs to skip a body, and the effective host, which for an absolute-form
// target is the target's authority and overrides Host (RFC 9112 3.2.2).
#include "preforkd/http/request.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "preforkd/http/fields.hpp"
#include "preforkd/http/host.hpp"

namespace preforkd::http {
namespace {

struct Error {
    int status;
    const char* reason;
};

using Outcome = std::optional<Error>;   // empty: fine so far

bool is_token(std::string_view s) noexcept
{
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

// Host, or the authority of an absolute-form target: the RFC 3986 grammar
// (host.hpp).  An empty Host is refused: RFC 9110 4.2.1 says an http URI
// with an empty host must be rejected as invalid.
bool valid_host(std::string_view h) noexcept
{
    return valid_authority(h);
}

// ---- lines ---------------------------------------------------------------

enum class LineStatus { ok, incomplete, bare_lf, bare_cr };

struct Line {
    std::string_view text;   // without the CRLF
    std::size_t next = 0;    // offset just after the LF
};

// The CRLF-terminated line starting at `pos`.  A CR that is followed by
// anything but LF is a bare CR even before the line is complete.
LineStatus take_line(std::string_view data, std::size_t pos, Line& line)
{
    std::size_t lf = data.find('\n', pos);
    std::size_t stop = lf == std::string_view::npos ? data.size() : lf;
    std::size_t cr = data.substr(0, stop).find('\r', pos);
    if (lf == std::string_view::npos)
        return cr != std::string_view::npos && cr + 1 < data.size() ? LineStatus::bare_cr
                                                                     : LineStatus::incomplete;
    if (lf == pos || data[lf - 1] != '\r') return LineStatus::bare_lf;
    if (cr < lf - 1) return LineStatus::bare_cr;
    line.text = data.substr(pos, lf - 1 - pos);
    line.next = lf + 1;
    return LineStatus::ok;
}

// ---- request line --------------------------------------------------------

struct RequestLine {
    std::string_view text, method, target, path, query;
    std::string_view authority;   // of an absolute-form target, else empty
    int major = 1, minor = 1;
};

bool valid_target_char(unsigned char c) noexcept
{
    // Visible ASCII only; '#' starts a fragment, which a client never sends.
    return c > 0x20 && c < 0x7f && c != '#';
}

// "HTTP/x.y": 1.0 and 1.1 are served; 1.2 to 1.9 are served as 1.1, because
// RFC 9110 2.5 and 6.2 say a higher minor version of the same major is to be
// processed as the highest one the recipient knows; any other major is 505.
Outcome parse_version(std::string_view v, RequestLine& rl)
{
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !digit(v[5]) || v[6] != '.' ||
        !digit(v[7]))
        return Error{400, "malformed HTTP version"};
    rl.major = v[5] - '0';
    rl.minor = std::min(v[7] - '0', 1);
    if (rl.major != 1) return Error{505, "unsupported HTTP version"};
    return std::nullopt;
}

// absolute-form "http://host/path?q": the path is what we serve; the
// authority must be present, be a valid host, and carry no userinfo (RFC
// 9110 4.2.4 forbids it in http URIs; it is a phishing device).
Outcome split_absolute(std::string_view target, RequestLine& rl)
{
    std::size_t colon = target.find("://");
    std::string_view scheme = target.substr(0, colon);
    if (colon == std::string_view::npos || !(iequals(scheme, "http") || iequals(scheme, "https")))
        return Error{400, "unsupported request-target form"};
    std::string_view rest = target.substr(colon + 3);
    std::size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    if (authority.empty() || authority.find('@') != std::string_view::npos ||
        !valid_host(authority))
        return Error{400, "bad authority in request-target"};
    rl.authority = authority;
    rl.path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    return std::nullopt;
}

Outcome split_target(RequestLine& rl)
{
    std::string_view t = rl.target;
    for (unsigned char c : t)
        if (!valid_target_char(c)) return Error{400, "invalid character in request-target"};
    if (t == "*") {
        if (rl.method != "OPTIONS") return Error{400, "asterisk-form outside OPTIONS"};
        rl.path = t;
        return std::nullopt;
    }
    if (t.front() == '/') {
        rl.path = t;
    } else if (Outcome e = split_absolute(t, rl)) {
        return e;
    }
    std::size_t q = rl.path.find('?');
    if (q != std::string_view::npos) {
        rl.query = rl.path.substr(q + 1);
        rl.path = rl.path.substr(0, q);
    }
    if (rl.path.empty()) rl.path = "/";   // "http://host" or "http://host?q"
    return std::nullopt;
}

// method SP request-target SP HTTP-version, single spaces, nothing else.
Outcome parse_request_line(std::string_view line, RequestLine& rl)
{
    rl.text = line;
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return Error{400, "malformed request line"};
    rl.method = line.substr(0, sp1);
    rl.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!is_token(rl.method)) return Error{400, "invalid method"};
    if (rl.target.empty()) return Error{400, "empty request-target"};
    if (Outcome e = split_target(rl)) return e;
    return parse_version(line.substr(sp2 + 1), rl);
}

// ---- header lines --------------------------------------------------------

bool valid_value_char(unsigned char c) noexcept
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);   // VCHAR, SP, HTAB, obs-text
}

Outcome split_header(std::string_view line, std::string_view& name, std::string_view& value)
{
    if (is_ows(line.front())) return Error{400, "obsolete line folding"};
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error{400, "header line without colon"};
    name = line.substr(0, colon);
    if (name.empty()) return Error{400, "empty header name"};
    if (is_ows(name.back())) return Error{400, "whitespace before colon"};
    if (!is_token(name)) return Error{400, "invalid header name"};
    value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value)
        if (!valid_value_char(c)) return Error{400, "control character in header value"};
    return std::nullopt;
}

// ---- checks on the complete head ----------------------------------------

bool is_digits(std::string_view s) noexcept
{
    if (s.empty() || s.size() > 18) return false;   // 18 digits fit in int64
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Transfer-Encoding decides the body length, so its last coding must be
// chunked (RFC 9112 6.3); HTTP/1.0 has no chunked coding at all.
Outcome check_transfer_encoding(const Request& r, std::string_view te)
{
    if (r.version_minor == 0) return Error{400, "Transfer-Encoding in HTTP/1.0"};
    std::string_view last;
    any_list_element(te, [&](std::string_view item) { last = item; return false; });
    if (!iequals(last, "chunked")) return Error{400, "Transfer-Encoding not ending in chunked"};
    return std::nullopt;
}

// Framing and Host rules that need all header fields; on success the body's
// framing is recorded in `r`.
Outcome check_head(Request& r)
{
    int hosts = 0, lengths = 0, encodings = 0;
    std::string_view te, length;
    for (const Header& h : r.headers) {
        if (iequals(h.name, "Host")) {
            if (++hosts > 1) return Error{400, "more than one Host"};
            if (!valid_host(h.value)) return Error{400, "invalid Host"};
        } else if (iequals(h.name, "Content-Length")) {
            if (++lengths > 1) return Error{400, "duplicate Content-Length"};
            if (!is_digits(h.value)) return Error{400, "invalid Content-Length"};
            length = h.value;
        } else if (iequals(h.name, "Transfer-Encoding")) {
            if (++encodings > 1) return Error{400, "duplicate Transfer-Encoding"};
            te = h.value;
        }
    }
    if (lengths && encodings) return Error{400, "both Content-Length and Transfer-Encoding"};
    if (encodings)
        if (Outcome e = check_transfer_encoding(r, te)) return e;
    if (hosts == 0 && r.version_minor == 1) return Error{400, "missing Host"};
    r.chunked = encodings > 0;
    // is_digits allowed at most 18 digits, so this cannot overflow.
    std::from_chars(length.data(), length.data() + length.size(), r.content_length);
    return std::nullopt;
}

// RFC 9112 3.2.2: an origin server ignores Host when the target is in
// absolute-form and uses the target's authority.  Host is overwritten (or,
// in HTTP/1.0 where it may be absent, added) so that nothing downstream can
// read the disagreeing value; check_head has already validated the original.
void settle_host(Request& r, std::string_view authority)
{
    if (authority.empty()) {
        r.host = r.header("Host");
        return;
    }
    r.host = authority;
    for (Header& h : r.headers) {
        if (iequals(h.name, "Host")) {
            h.value = r.host;
            return;
        }
    }
    r.headers.push_back(Header{"Host", r.host});
}

// ---- the walk ------------------------------------------------------------

struct Walk {
    RequestLine rl;
    bool have_request_line = false;
    std::size_t headers_begin = 0;   // first header line
    std::size_t header_count = 0;
    std::size_t end = 0;             // just after the blank line; 0 until then
};

ParseResult fail(int status, const char* reason)
{
    ParseResult r;
    r.state = ParseState::error;
    r.status = status;
    r.reason = reason;
    return r;
}

ParseResult fail(const Error& e) { return fail(e.status, e.reason); }

ParseResult line_failure(LineStatus s)
{
    return fail(400, s == LineStatus::bare_lf ? "bare LF" : "bare CR");
}

// Consumes one complete line: an empty line before the request line
// (skipped, RFC 9112 2.2), the request line, a header field, or the blank
// line that ends the head (which sets w.end).
Outcome take(Walk& w, const Line& line, const Limits& limits)
{
    if (!w.have_request_line) {
        if (line.text.empty()) return std::nullopt;
        w.have_request_line = true;
        w.headers_begin = line.next;
        return parse_request_line(line.text, w.rl);
    }
    if (line.text.empty()) {
        w.end = line.next;
        return std::nullopt;
    }
    if (++w.header_count > limits.max_headers) return Error{431, "too many header fields"};
    std::string_view name, value;
    return split_header(line.text, name, value);
}

// `out` starts over as a fresh Request, but keeps the storage of its
// strings and of its header list: the connection loop hands the same
// Request to each parse() on a connection, so its second request on takes
// no memory from the allocator.
void start_over(Request& out)
{
    Request fresh;
    for (std::string Request::*text : {&Request::method, &Request::target, &Request::path,
                                       &Request::query, &Request::request_line, &Request::host}) {
        fresh.*text = std::move(out.*text);
        (fresh.*text).clear();
    }
    fresh.headers = std::move(out.headers);
    out = std::move(fresh);
}

void fill(const Walk& w, std::string_view head, Request& out)
{
    start_over(out);
    out.method.assign(w.rl.method);
    out.target.assign(w.rl.target);
    out.path.assign(w.rl.path);
    out.query.assign(w.rl.query);
    out.version_major = w.rl.major;
    out.version_minor = w.rl.minor;
    out.request_line.assign(w.rl.text);
    // Existing entries are assigned to, not replaced: their strings too
    // keep what they had.
    out.headers.resize(w.header_count);
    std::size_t i = 0;
    Line line;
    for (std::size_t pos = w.headers_begin; pos + 2 < w.end && i < out.headers.size();
         pos = line.next, ++i) {
        take_line(head, pos, line);
        std::string_view name, value;
        split_header(line.text, name, value);
        out.headers[i].name.assign(name);
        out.headers[i].value.assign(value);
    }
    out.headers.resize(i);   // the walk counted the same lines; never more
}

}  // namespace

ParseResult parse(std::string_view data, const Limits& limits, Request& out)
{
    // Never look past the limit: a head that fits ends inside this window.
    std::string_view window = data.substr(0, limits.max_header_size);
    Walk w;
    for (std::size_t pos = 0; w.end == 0;) {
        Line line;
        LineStatus s = take_line(window, pos, line);
        if (s == LineStatus::incomplete) break;
        if (s != LineStatus::ok) return line_failure(s);
        if (Outcome e = take(w, line, limits)) return fail(*e);
        pos = line.next;
    }
    if (w.end == 0) {
        if (data.size() <= limits.max_header_size) return ParseResult{};
        return w.have_request_line ? fail(431, "request header too large")
                                   : fail(414, "request line too long");
    }
    fill(w, window, out);
    if (Outcome e = check_head(out)) return fail(*e);
    settle_host(out, w.rl.authority);
    ParseResult r;
    r.state = ParseState::complete;
    r.consumed = w.end;
    return r;
}

std::string first_line(std::string_view data, std::size_t max)
{
    std::size_t pos = 0;
    while (data.substr(pos, 2) == "\r\n") pos += 2;
    std::size_t lf = data.find('\n', pos);
    if (lf == std::string_view::npos) return {};
    std::string_view line = data.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string out(line.substr(0, max));
    // It goes into a log line: no control characters, no raw bytes.
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// ---- Request -------------------------------------------------------------

std::string_view Request::header(std::string_view name) const noexcept
{
    for (const Header& h : headers)
        if (iequals(h.name, name)) return h.value;
    return {};
}

bool Request::has_header(std::string_view name) const noexcept
{
    for (const Header& h : headers)
        if (iequals(h.name, name)) return true;
    return false;
}

bool Request::expects_continue() const noexcept
{
    auto is_continue = [](std::string_view e) { return iequals(e, "100-continue"); };
    for (const Header& h : headers)
        if (iequals(h.name, "Expect") && any_list_element(h.value, is_continue)) return true;
    return false;
}

bool Request::wants_keep_alive() const noexcept
{
    bool close = false, keep_alive = false;
    for (const Header& h : headers) {
        if (!iequals(h.name, "Connection")) continue;
        any_list_element(h.value, [&](std::string_view token) {
            close = close || iequals(token, "close");
            keep_alive = keep_alive || iequals(token, "keep-alive");
            return false;
        });
    }
    if (close) return false;
    return version_minor >= 1 || keep_alive;
}

}  // namespace preforkd::http
