// http/static_file.cpp - answering a request from the files under the root.
//
// A request path goes through three gates before anything is opened:
// percent_decode (once; bad escapes and control characters are a 400),
// normalize_path (dot segments removed, so the path cannot climb above "/"),
// and resolve() below, which asks realpath(3) where the name really leads
// and refuses anything outside the real root - that is how a symlink inside
// the root is followed while one pointing out of it is a 403.  The canonical
// path is then stat()ed before open(): only regular files and directories
// are ever opened, because opening a device can have side effects and
// opening a FIFO can block.  open() uses O_NOFOLLOW and O_NONBLOCK and the
// descriptor is fstat()ed again, so a name swapped for a symlink or a FIFO
// after the check is refused rather than served.
//
// Rejected: openat2(RESOLVE_BENEATH), which closes the remaining window (a
// directory component swapped between realpath and open, by someone who can
// write inside the root), but fails with ENOSYS or EPERM under older kernels
// and seccomp filters and so needs this code as a fallback anyway.  The root
// is canonicalised on every request rather than cached, so that the common
// "root is a symlink to the current release" deployment switches atomically.
//
// Conditional requests follow RFC 9110 13.2.2: If-None-Match, else
// If-Modified-Since, decides a 304 before any Range is looked at.  Only one
// byte range is served; a multi-range request gets the whole file, which
// RFC 9110 14.2 allows.
#include "preforkd/http/static_file.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>

#include "preforkd/http/autoindex.hpp"
#include "preforkd/http/date.hpp"
#include "preforkd/http/mime.hpp"
#include "preforkd/http/path.hpp"
#include "preforkd/http/response.hpp"

namespace preforkd::http {
namespace {

constexpr std::string_view kAllow = "GET, HEAD, OPTIONS";

enum class Method { unknown, get, head, options, not_allowed };

struct MethodEntry {
    std::string_view name;
    Method kind;
};

// RFC 9110 section 9 methods; anything else is 501.  Methods are
// case-sensitive, so "get" is unknown.
constexpr std::array<MethodEntry, 9> kMethods = {{
    {"CONNECT", Method::not_allowed},
    {"DELETE", Method::not_allowed},
    {"GET", Method::get},
    {"HEAD", Method::head},
    {"OPTIONS", Method::options},
    {"PATCH", Method::not_allowed},
    {"POST", Method::not_allowed},
    {"PUT", Method::not_allowed},
    {"TRACE", Method::not_allowed},
}};

static_assert(std::is_sorted(kMethods.begin(), kMethods.end(),
                             [](const MethodEntry& a, const MethodEntry& b) {
                                 return a.name < b.name;
                             }),
              "kMethods must stay sorted for the binary search");

Method classify(std::string_view method)
{
    auto it = std::lower_bound(kMethods.begin(), kMethods.end(), method,
                               [](const MethodEntry& e, std::string_view m) { return e.name < m; });
    return it != kMethods.end() && it->name == method ? it->kind : Method::unknown;
}

// The loop does not read bodies yet: one left in the buffer would be parsed
// as the next request, so such a connection is closed after the answer.
bool carries_body(const Request& r)
{
    if (r.has_header("Transfer-Encoding")) return true;
    return r.header("Content-Length").find_first_not_of('0') != std::string_view::npos;
}

struct Context {
    const Request& req;
    Exchange x;
};

Response fail(const Context& c, int status)
{
    return finish_response(c.x, status_page(c.x, status));
}

// ---- resolution ----------------------------------------------------------

struct Resolved {
    int status = 0;   // 0: fd and st describe the file; else an HTTP status
    Fd fd;
    struct stat st {};
};

struct Root {
    const std::string& path;   // as configured
    std::string real;          // canonical, symlinks resolved
};

int status_for_errno(int err) noexcept
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ELOOP:   // a symlink loop, or a name swapped for a symlink
        return 403;
    default:
        return 500;
    }
}

// realpath(3) into a std::string; errno is kept on failure.
bool canonical(const std::string& path, std::string& out)
{
    char* real = realpath(path.c_str(), nullptr);
    if (!real) return false;
    out = real;
    std::free(real);
    return true;
}

bool beneath(std::string_view path, std::string_view root) noexcept
{
    if (root == "/") return true;
    return path.starts_with(root) && (path.size() == root.size() || path[root.size()] == '/');
}

bool servable(const struct stat& st) noexcept
{
    return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode);
}

Resolved refused(int status)
{
    Resolved res;
    res.status = status;
    return res;
}

// Opens the normalised `url_path` under the root, see the file comment.
Resolved resolve(const Root& root, const std::string& url_path)
{
    std::string real;
    if (!canonical(root.path + url_path, real)) return refused(status_for_errno(errno));
    if (!beneath(real, root.real)) return refused(403);
    Resolved res;
    if (stat(real.c_str(), &res.st) != 0) return refused(status_for_errno(errno));
    if (!servable(res.st)) return refused(403);
    res.fd.reset(open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY));
    if (!res.fd) return refused(status_for_errno(errno));
    if (fstat(res.fd.get(), &res.st) != 0 || !servable(res.st)) return refused(403);
    return res;
}

// ---- validators and conditions ------------------------------------------

struct Validators {
    std::string etag;            // "inode-size-mtime_ns", hex, quoted
    std::string last_modified;   // IMF-fixdate
};

Validators validators(const struct stat& st)
{
    std::uint64_t mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000u +
                             static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
    char buf[64];
    std::snprintf(buf, sizeof buf, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
                  static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                  mtime_ns);
    return Validators{buf, format_http_date(st.st_mtime)};
}

std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored.
bool etag_listed(std::string_view list, std::string_view etag)
{
    if (trim(list) == "*") return true;
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view tag = trim(list.substr(0, comma));
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag == etag) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// A present If-None-Match decides alone; If-Modified-Since is only looked
// at without it, and an unparsable date is ignored (RFC 9110 13.1.3).
bool not_modified(const Request& req, const struct stat& st, const std::string& etag)
{
    bool asked = false, listed = false;
    for (const Header& h : req.headers) {
        if (!iequals(h.name, "If-None-Match")) continue;
        asked = true;
        listed = listed || etag_listed(h.value, etag);
    }
    if (asked) return listed;
    if (!req.has_header("If-Modified-Since")) return false;
    std::optional<time_t> since = parse_http_date(req.header("If-Modified-Since"));
    return since && st.st_mtime <= *since;
}

// If-Range: a strong ETag must match exactly, a date must be the exact
// Last-Modified; otherwise the Range is ignored and the whole file sent.
bool if_range_holds(const Request& req, const struct stat& st, const std::string& etag)
{
    if (!req.has_header("If-Range")) return true;
    std::string_view v = req.header("If-Range");
    if (v.starts_with("\"")) return v == etag;
    if (v.starts_with("W/")) return false;
    std::optional<time_t> t = parse_http_date(v);
    return t && *t == st.st_mtime;
}

// ---- ranges ---------------------------------------------------------------

struct Span {
    std::uint64_t first = 0, length = 0;
};

enum class RangeAnswer { whole, partial, unsatisfiable };

bool parse_u64(std::string_view s, std::uint64_t& out)
{
    if (s.empty() || s.size() > 18) return false;
    out = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

// One "bytes=first-last" / "bytes=first-" / "bytes=-suffix" against `size`.
// What we cannot or need not honour (other units, bad syntax, several
// ranges) is ignored, which RFC 9110 14.2 permits: the whole file is sent.
RangeAnswer parse_range(std::string_view spec, std::uint64_t size, Span& span)
{
    if (!spec.starts_with("bytes=")) return RangeAnswer::whole;
    spec = trim(spec.substr(6));
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos)
        return RangeAnswer::whole;
    std::string_view first_text = spec.substr(0, dash), last_text = spec.substr(dash + 1);
    std::uint64_t first = 0, last = size ? size - 1 : 0;
    if (first_text.empty()) {   // the last N bytes
        if (!parse_u64(last_text, last)) return RangeAnswer::whole;
        if (last == 0 || size == 0) return RangeAnswer::unsatisfiable;
        span = {size - std::min(last, size), std::min(last, size)};
        return RangeAnswer::partial;
    }
    if (!parse_u64(first_text, first)) return RangeAnswer::whole;
    if (!last_text.empty() && (!parse_u64(last_text, last) || last < first))
        return RangeAnswer::whole;
    if (first >= size) return RangeAnswer::unsatisfiable;
    last = std::min(last, size - 1);
    span = {first, last - first + 1};
    return RangeAnswer::partial;
}

// ---- answers ----------------------------------------------------------------

Response not_modified_response(const Context& c, const Validators& v)
{
    Response r = start_response(c.x, 304);
    add_header(r, "ETag", v.etag);
    add_header(r, "Last-Modified", v.last_modified);
    return finish_response(c.x, std::move(r));
}

Response unsatisfiable(const Context& c, std::uint64_t size)
{
    Response r = status_page(c.x, 416);
    add_header(r, "Content-Range", "bytes */" + std::to_string(size));
    return finish_response(c.x, std::move(r));
}

// 200 for the whole file or 206 for one span of it; the range is only
// considered for GET (HEAD has no range semantics, RFC 9110 14.2).
Response serve_file(const Context& c, const std::string& url_path, Resolved& res)
{
    Validators v = validators(res.st);
    if (not_modified(c.req, res.st, v.etag)) return not_modified_response(c, v);
    auto size = static_cast<std::uint64_t>(res.st.st_size);
    Span span{0, size};
    bool partial = false;
    if (!c.x.head_only && c.req.has_header("Range") && if_range_holds(c.req, res.st, v.etag)) {
        RangeAnswer a = parse_range(c.req.header("Range"), size, span);
        if (a == RangeAnswer::unsatisfiable) return unsatisfiable(c, size);
        partial = a == RangeAnswer::partial;
    }
    Response r = start_response(c.x, partial ? 206 : 200);
    add_header(r, "Content-Type",
               content_type(c.x.site, url_path.substr(url_path.rfind('/') + 1)));
    add_header(r, "Content-Length", std::to_string(span.length));
    add_header(r, "Last-Modified", v.last_modified);
    add_header(r, "ETag", v.etag);
    add_header(r, "Accept-Ranges", "bytes");
    if (partial)
        add_header(r, "Content-Range", "bytes " + std::to_string(span.first) + "-" +
                                           std::to_string(span.first + span.length - 1) + "/" +
                                           std::to_string(size));
    if (span.length > 0) r.file = std::move(res.fd);
    r.file_offset = static_cast<off_t>(span.first);
    r.file_length = span.length;
    return finish_response(c.x, std::move(r));
}

// "/dir" -> "/dir/", the query kept.  The path is re-encoded from its
// normalised form, so it never starts with "//" or holds a raw '\\'.
Response redirect_to_directory(const Context& c, const std::string& url_path)
{
    Response r = status_page(c.x, 301);
    std::string location = encode_path(url_path + "/");
    if (!c.req.query.empty()) location += "?" + c.req.query;
    add_header(r, "Location", location);
    return finish_response(c.x, std::move(r));
}

Response listing(const Context& c, const std::string& url_path, const Resolved& dir)
{
    std::optional<std::string> html = directory_listing(dir.fd.get(), url_path);
    if (!html) return fail(c, status_for_errno(errno));
    Response r = start_response(c.x, 200);
    add_header(r, "Content-Type", "text/html; charset=utf-8");
    add_header(r, "Content-Length", std::to_string(html->size()));
    r.body = std::move(*html);
    return finish_response(c.x, std::move(r));
}

// Index files in order (a missing one or a directory is skipped, any other
// refusal is final), then the listing if enabled, else 403.
Response serve_directory(const Context& c, const Root& root, const std::string& url_path,
                         const Resolved& dir)
{
    if (!url_path.ends_with('/')) return redirect_to_directory(c, url_path);
    for (const std::string& name : c.x.site.index) {
        std::string candidate = normalize_path(url_path + name);
        Resolved index = resolve(root, candidate);
        if (index.status == 404 || (index.status == 0 && !S_ISREG(index.st.st_mode))) continue;
        if (index.status) return fail(c, index.status);
        return serve_file(c, candidate, index);
    }
    if (!c.x.site.autoindex) return fail(c, 403);
    return listing(c, url_path, dir);
}

Response serve(const Context& c)
{
    std::optional<std::string> decoded = percent_decode(c.req.path);
    if (!decoded) return fail(c, 400);
    std::string url_path = normalize_path(*decoded);
    Root root{c.x.site.root, {}};
    if (!canonical(root.path, root.real)) return fail(c, status_for_errno(errno));
    Resolved res = resolve(root, url_path);
    if (res.status) return fail(c, res.status);
    if (S_ISDIR(res.st.st_mode)) return serve_directory(c, root, url_path, res);
    return serve_file(c, url_path, res);
}

Response options(const Context& c)
{
    Response r = start_response(c.x, 200);
    add_header(r, "Allow", kAllow);
    add_header(r, "Content-Length", "0");
    return finish_response(c.x, std::move(r));
}

Response not_allowed(const Context& c)
{
    Response r = status_page(c.x, 405);
    add_header(r, "Allow", kAllow);
    return finish_response(c.x, std::move(r));
}

}  // namespace

Response respond(const Request& request, const Site& site, bool close)
{
    Method method = classify(request.method);
    bool closing = close || !request.wants_keep_alive() || carries_body(request);
    Context c{request, Exchange{site, request.version_minor, closing, method == Method::head}};
    switch (method) {
    case Method::get:
    case Method::head:
        return serve(c);
    case Method::options:
        return options(c);
    case Method::not_allowed:
        return not_allowed(c);
    case Method::unknown:
        break;
    }
    return fail(c, 501);
}

}  // namespace preforkd::http
