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
// That realpath(3) walk costs a readlink per path component, twice (root and
// file), on every request.  So the fast path asks the kernel instead:
// openat2(RESOLVE_BENEATH) relative to a descriptor of the root, which
// refuses whatever leads outside it, in one call (after an fstatat that keeps
// devices and FIFOs from being opened).  The kernel also refuses absolute
// symlinks, even ones that point back inside the root, and kernels or
// seccomp filters without openat2 say ENOSYS or EPERM: those cases take the
// realpath(3) path above, which stays the definition of what is allowed.
// The root descriptor is reopened once a second, so the common "root is a
// symlink to the current release" deployment still switches within a second.
// On this path small settled files are answered from a per-worker cache
// (file_cache.hpp) while the fstatat shows the same file.
//
// With follow_symlinks the realpath(3) check against the root is skipped, so
// a symlink may lead anywhere; ".." still cannot, since it was removed
// lexically before the file system was asked anything.
//
// A file is answered through its Representation: the file or, with
// gzip_static, "name.gz" beside it, with the validators of whichever is
// sent.  Preconditions (conditional.cpp, RFC 9110 13.2.2 order) decide 412
// or 304 before the Range is looked at; the Range (range.cpp) gives 200,
// 206 with one part, 206 multipart/byteranges, or 416.  Multipart bodies
// are described as parts of the open file, not copied into memory, so
// the loop still sends every byte of a file with sendfile(2).
#include "preforkd/http/static_file.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ctime>
#include <unistd.h>

#include "preforkd/http/autoindex.hpp"
#include "preforkd/http/conditional.hpp"
#include "preforkd/http/date.hpp"
#include "preforkd/http/encoding.hpp"
#include "preforkd/http/file_cache.hpp"
#include "preforkd/http/fields.hpp"
#include "preforkd/http/mime.hpp"
#include "preforkd/http/path.hpp"
#include "preforkd/http/range.hpp"
#include "preforkd/http/response.hpp"
#include "preforkd/log.hpp"

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

// See UnreadBody in static_file.hpp.
bool body_forces_close(const Request& r, UnreadBody body)
{
    if (!r.has_body()) return false;
    return body == UnreadBody::close_connection || r.expects_continue();
}

struct Root {
    const std::string& path;   // as configured
    mutable std::string real;  // canonical root, computed on the slow path only
    bool confine = true;       // refuse what resolves outside `real`
};

struct Context {
    const Request& req;
    Exchange x;
    Root root;
    const std::string* url_path = nullptr;   // decoded and normalised already
};

// `why` is the refusal's reason for the diagnostic log (Response::refusal).
Response fail(const Context& c, int status, std::string why = {})
{
    Response r = finish_response(c.x, status_page(c.x, status));
    r.refusal = std::move(why);
    return r;
}

// ---- resolution ----------------------------------------------------------

struct Resolved {
    int status = 0;   // 0: fd and st describe the file; else an HTTP status
    Fd fd;            // may be closed when `content` holds the bytes
    struct stat st {};
    std::shared_ptr<const std::string> content;   // a small file's bytes
    std::string why;  // with a 403: the reason, for the diagnostic log
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

Resolved refused(int status, std::string why = {})
{
    Resolved res;
    res.status = status;
    res.why = std::move(why);
    return res;
}

// The refusal for `call` on `path` failing with errno; a missing file is an
// ordinary 404 and needs no reason.
Resolved refused_errno(const char* call, const std::string& path)
{
    int err = errno;
    int status = status_for_errno(err);
    if (status == 404) return refused(404);
    return refused(status, std::string(call) + "(\"" + path + "\") failed: " + std::strerror(err));
}

std::string not_servable(const std::string& path)
{
    return path + " is neither a regular file nor a directory";
}

// Opens the normalised `url_path` under the root the portable way, see the
// file comment.
Resolved resolve_by_realpath(const Root& root, const std::string& url_path)
{
    if (root.confine && root.real.empty() && !canonical(root.path, root.real))
        return refused_errno("realpath", root.path);
    std::string real;
    if (!canonical(root.path + url_path, real)) return refused_errno("realpath", root.path + url_path);
    if (root.confine && !beneath(real, root.real))
        return refused(403, "symlink " + root.path + url_path + " leads to " + real +
                                ", outside the root (follow_symlinks is off)");
    Resolved res;
    if (stat(real.c_str(), &res.st) != 0) return refused_errno("stat", real);
    if (!servable(res.st)) return refused(403, not_servable(real));
    res.fd.reset(open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY));
    if (!res.fd) return refused_errno("open", real);
    if (fstat(res.fd.get(), &res.st) != 0 || !servable(res.st)) return refused(403, not_servable(real));
    return res;
}

// A descriptor of the root, reopened when older than a second; -1 (errno
// set) when the root cannot be opened.  One per root a worker serves from
// (sites, locations with their own root), in a short list: a worker sees
// few roots, and a list of a few strings is faster than a hash here.
int root_descriptor(const std::string& path)
{
    struct Opened {
        std::string path;
        Fd fd;
        std::int64_t ms = 0;
    };
    thread_local std::vector<Opened> roots;  // thread_local: see worker.cpp
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    std::int64_t ms = std::int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
    auto it = std::find_if(roots.begin(), roots.end(), [&](const Opened& o) { return o.path == path; });
    if (it != roots.end() && it->fd && ms - it->ms < 1000) return it->fd.get();
    if (it == roots.end()) {
        if (roots.size() >= 64) roots.clear();   // a bound, whatever the configuration
        it = roots.insert(roots.end(), Opened{path, Fd(), 0});
    }
    it->fd.reset(open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    it->ms = ms;
    return it->fd.get();
}

bool g_no_openat2 = false;   // ENOSYS or EPERM once: never ask again

FileCache& file_cache()
{
    thread_local FileCache cache;  // thread_local: see worker.cpp
    return cache;
}

std::int64_t wall_clock_ns()
{
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return std::int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// Reads a small settled file whole into the cache; a short read (the file
// changing under us) keeps it out.
void remember(const std::string& rel, Resolved& res)
{
    if (!FileCache::cacheable(res.st, wall_clock_ns()))
        return;
    std::string bytes(std::size_t(res.st.st_size), '\0');
    std::size_t got = 0;
    while (got < bytes.size()) {
        ssize_t n = pread(res.fd.get(), bytes.data() + got, bytes.size() - got, off_t(got));
        if (n <= 0)
            return;
        got += std::size_t(n);
    }
    res.content = file_cache().store(rel, res.st, std::move(bytes));
}

enum class Beneath { done, slow_path };

// The fast path: fstatat for the type, openat2(RESOLVE_BENEATH) to open.
Beneath resolve_beneath(int root_fd, const std::string& root_path, const std::string& url_path,
                        Resolved& res)
{
    std::string rel = url_path.size() > 1 ? url_path.substr(1) : ".";
    if (fstatat(root_fd, rel.c_str(), &res.st, 0) != 0) {
        res = refused_errno("fstatat", root_path + url_path);
        return Beneath::done;
    }
    if (!servable(res.st)) {
        res = refused(403, not_servable(root_path + url_path));
        return Beneath::done;
    }
    if (S_ISREG(res.st.st_mode) && (res.content = file_cache().find(rel, res.st)))
        return Beneath::done;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd < 0) {
        if (errno == ENOSYS || errno == EPERM) g_no_openat2 = true;
        if (errno == ENOSYS || errno == EPERM || errno == EXDEV) return Beneath::slow_path;
        res = refused_errno("openat2", root_path + url_path);
        return Beneath::done;
    }
    res.fd.reset(int(fd));
    if (fstat(res.fd.get(), &res.st) != 0 || !servable(res.st))
        res = refused(403, not_servable(root_path + url_path));
    else remember(rel, res);
    return Beneath::done;
}

// Opens the normalised `url_path` under the root, see the file comment.
Resolved resolve(const Root& root, const std::string& url_path)
{
    if (root.confine && !g_no_openat2) {
        int root_fd = root_descriptor(root.path);
        if (root_fd < 0) return refused_errno("open", root.path);
        Resolved res;
        if (resolve_beneath(root_fd, root.path, url_path, res) == Beneath::done) return res;
    }
    return resolve_by_realpath(root, url_path);
}

// ---- the representation ----------------------------------------------------

// "inode-size-mtime_ns" in hex, quoted: it changes whenever the file does.
// The gzip variant gets a suffix of its own: were "a.gz" a hard link to "a"
// (one inode), the two representations would otherwise share a validator
// while differing in Content-Encoding, and a cache could answer one with
// the other.  Kept in place (at most 55 characters), not on the heap.
class EntityTag {
public:
    EntityTag() = default;
    EntityTag(const struct stat& st, bool gzip) noexcept
    {
        std::uint64_t mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000u +
                                 static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
        char* end = text_.data() + text_.size();
        char* p = text_.data();
        *p++ = '"';
        p = std::to_chars(p, end, static_cast<std::uint64_t>(st.st_ino), 16).ptr;
        *p++ = '-';
        p = std::to_chars(p, end, static_cast<std::uint64_t>(st.st_size), 16).ptr;
        *p++ = '-';
        p = std::to_chars(p, end, mtime_ns, 16).ptr;
        std::string_view tail = gzip ? "-gz\"" : "\"";
        p = std::copy(tail.begin(), tail.end(), p);
        size_ = static_cast<std::size_t>(p - text_.data());
    }
    std::string_view view() const noexcept { return {text_.data(), size_}; }

private:
    // '"', three numbers of at most 16 hex digits, two '-', "-gz\"".
    std::array<char, 1 + 3 * 16 + 2 + 4> text_{};
    std::size_t size_ = 0;
};

// Last-Modified of the file answered last: a worker mostly answers the same
// few files, and the formatting is what costs.  "Nothing cached yet" is an
// empty optional, not a sentinel time: every time_t, -1 included, is an
// mtime a file can have (touch -d @-1).
const std::string& last_modified_of(time_t mtime)
{
    thread_local std::optional<time_t> cached_for;
    thread_local std::string text;  // thread_local: see worker.cpp
    if (cached_for != mtime) {
        text = format_http_date(mtime);
        cached_for = mtime;
    }
    return text;
}

// What a GET or HEAD of a file is answered with: the file itself or, with
// gzip_static, its precompressed sibling, and the fields that describe it.
// `type` and `last_modified` are the memos of content_type() and
// last_modified_of(), valid for the one response a Representation is made
// for: nothing is copied.
struct Representation {
    Resolved file;
    std::string_view type;            // Content-Type, from the name that was asked for
    bool gzip = false;                // `file` is "name.gz": Content-Encoding: gzip
    bool varies = false;              // a "name.gz" exists: the answer depends on Accept-Encoding
    EntityTag etag;                   // strong, quoted
    std::string_view last_modified;   // IMF-fixdate

    std::uint64_t size() const noexcept { return static_cast<std::uint64_t>(file.st.st_size); }
    time_t mtime() const noexcept { return file.st.st_mtime; }
};

// "name.gz" goes through the same resolve() gate as a requested path (beneath
// the root unless follow_symlinks, a regular file); anything else about it
// - missing, refused, a directory - is as if it were not there.
std::optional<Resolved> gzip_sibling(const Context& c, const std::string& url_path)
{
    if (!c.x.site.gzip_static) return std::nullopt;
    Resolved gz = resolve(c.root, url_path + ".gz");
    if (gz.status != 0 || !S_ISREG(gz.st.st_mode)) return std::nullopt;
    return gz;
}

// The sibling's existence alone makes the answer vary, so the identity
// response says "Vary: Accept-Encoding" too: a shared cache must not hand
// it to a client that would have got the gzip one, or the reverse.
Representation represent(const Context& c, const std::string& url_path, Resolved& plain)
{
    Representation rep;
    std::optional<Resolved> gz = gzip_sibling(c, url_path);
    rep.varies = gz.has_value();
    rep.gzip = rep.varies && accepts_gzip(c.req);
    rep.file = std::move(rep.gzip ? *gz : plain);
    rep.type = content_type(c.x.site, std::string_view(url_path).substr(url_path.rfind('/') + 1));
    rep.etag = EntityTag(rep.file.st, rep.gzip);
    rep.last_modified = last_modified_of(rep.mtime());
    return rep;
}

// The validators and Vary, which a 304 must repeat from the 200 it stands
// for (RFC 9110 15.4.5).
void add_validators(Response& r, const Representation& rep)
{
    add_header(r, "Last-Modified", rep.last_modified);
    add_header(r, "ETag", rep.etag.view());
    if (rep.varies) add_header(r, "Vary", "Accept-Encoding");
}

void add_content_fields(Response& r, const Representation& rep, std::string_view type,
                        std::uint64_t length)
{
    add_header(r, "Content-Type", type);
    add_header(r, "Content-Length", std::to_string(length));
    if (rep.gzip) add_header(r, "Content-Encoding", "gzip");
    add_validators(r, rep);
    add_header(r, "Accept-Ranges", "bytes");
}

// ---- answers ----------------------------------------------------------------

Response not_modified_response(const Context& c, const Representation& rep)
{
    Response r = start_response(c.x, 304);
    add_validators(r, rep);
    return finish_response(c.x, std::move(r));
}

Response unsatisfiable(const Context& c, std::uint64_t size)
{
    Response r = status_page(c.x, 416);
    add_header(r, "Content-Range", "bytes */" + std::to_string(size));
    return finish_response(c.x, std::move(r));
}

// 200 with the whole representation, or 206 with one span of it.
Response single_part(const Context& c, Representation& rep, const ByteSpan& span, bool partial)
{
    Response r = start_response(c.x, partial ? 206 : 200);
    add_content_fields(r, rep, rep.type, span.length);
    if (partial) add_header(r, "Content-Range", "bytes " + content_range(span, rep.size()));
    if (span.length > 0 && rep.file.content) {
        r.body.assign(*rep.file.content, span.first, span.length);
        return finish_response(c.x, std::move(r));
    }
    if (span.length > 0) r.file = std::move(rep.file.fd);
    r.file_offset = static_cast<off_t>(span.first);
    r.file_length = span.length;
    return finish_response(c.x, std::move(r));
}

// 64 random bits: a boundary must not occur in the parts, and one an
// attacker cannot predict cannot be planted in a file to forge a part.
std::string make_boundary()
{
    std::uint64_t n = (static_cast<std::uint64_t>(arc4random()) << 32) | arc4random();
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, n);
    return buf;
}

// 206 multipart/byteranges (RFC 9110 14.6): each span a part with its own
// Content-Type and Content-Range; the bytes still go out with sendfile.
Response multipart(const Context& c, Representation& rep, const std::vector<ByteSpan>& spans)
{
    std::string boundary = make_boundary();
    std::vector<FilePart> parts;
    std::uint64_t length = 0;
    for (const ByteSpan& span : spans) {
        FilePart p;
        p.text = (parts.empty() ? "--" : "\r\n--") + boundary + "\r\nContent-Type: ";
        p.text.append(rep.type);
        p.text += "\r\nContent-Range: bytes " + content_range(span, rep.size()) + "\r\n\r\n";
        p.offset = static_cast<off_t>(span.first);
        p.length = span.length;
        length += p.text.size() + p.length;
        parts.push_back(std::move(p));
    }
    parts.push_back(FilePart{"\r\n--" + boundary + "--\r\n", 0, 0});
    length += parts.back().text.size();
    Response r = start_response(c.x, 206);
    add_content_fields(r, rep, "multipart/byteranges; boundary=" + boundary, length);
    if (rep.file.content) {
        // A cached file: the parts are assembled in memory instead.
        for (const FilePart& p : parts)
            r.body += p.text + rep.file.content->substr(std::size_t(p.offset), p.length);
        return finish_response(c.x, std::move(r));
    }
    r.file = std::move(rep.file.fd);
    r.parts = std::move(parts);
    return finish_response(c.x, std::move(r));
}

// Only a GET has range semantics (RFC 9110 14.2), and only while If-Range
// holds; otherwise the plan is "whole".
RangePlan plan_for(const Context& c, const Representation& rep)
{
    if (c.x.head_only || !c.req.has_header("Range") ||
        !if_range_holds(c.req, rep.etag.view(), rep.mtime()))
        return RangePlan{};
    return plan_ranges(c.req.header("Range"), rep.size(), c.x.site.max_ranges);
}

// Preconditions are decided before the Range is looked at (RFC 9110 13.2.2).
Response serve_file(const Context& c, const std::string& url_path, Resolved& res)
{
    Representation rep = represent(c, url_path, res);
    switch (check_preconditions(c.req, rep.etag.view(), rep.mtime())) {
    case Precondition::failed: return fail(c, 412);
    case Precondition::not_modified: return not_modified_response(c, rep);
    case Precondition::proceed: break;
    }
    RangePlan plan = plan_for(c, rep);
    switch (plan.kind) {
    case RangeKind::unsatisfiable: return unsatisfiable(c, rep.size());
    case RangeKind::partial:
        if (plan.spans.size() > 1) return multipart(c, rep, plan.spans);
        return single_part(c, rep, plan.spans.front(), true);
    case RangeKind::whole: break;
    }
    return single_part(c, rep, ByteSpan{0, rep.size()}, false);
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
Response serve_directory(const Context& c, const std::string& url_path, const Resolved& dir)
{
    if (!url_path.ends_with('/')) return redirect_to_directory(c, url_path);
    for (const std::string& name : c.x.site.index) {
        std::string candidate = normalize_path(url_path + name);
        Resolved index = resolve(c.root, candidate);
        if (index.status == 404 || (index.status == 0 && !S_ISREG(index.st.st_mode))) continue;
        if (index.status) return fail(c, index.status, std::move(index.why));
        return serve_file(c, candidate, index);
    }
    if (!c.x.site.autoindex)
        return fail(c, 403, "directory " + c.root.path + url_path + " has no index file and autoindex is off");
    return listing(c, url_path, dir);
}

Response serve(Context& c)
{
    std::string url_path;
    if (c.url_path) {
        url_path = *c.url_path;
    } else {
        std::optional<std::string> decoded = percent_decode(c.req.path);
        if (!decoded) return fail(c, 400);
        url_path = normalize_path(*decoded);
    }
    Resolved res = resolve(c.root, url_path);
    if (res.status) return fail(c, res.status, std::move(res.why));
    if (S_ISDIR(res.st.st_mode)) return serve_directory(c, url_path, res);
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

void open_roots(const std::vector<std::string>& roots)
{
    for (const std::string& root : roots)
        root_descriptor(root);
}

Response respond(const Request& request, const Site& site, bool close, UnreadBody body,
                 const std::string* url_path)
{
    Method method = classify(request.method);
    bool closing = close || !request.wants_keep_alive() || body_forces_close(request, body);
    Context c{request, Exchange{site, request.version_minor, closing, method == Method::head},
              Root{site.root, {}, !site.follow_symlinks}, url_path};
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
