// http/static_file.hpp - turns a parsed request into a response for a file.
//
// Pure apart from the file system: resolves the decoded path under the
// document root (never outside it), chooses index files, the /dir -> /dir/
// redirect, builds the status line and headers.  The connection loop sends
// the head and then the body: in-memory bytes, one file range via sendfile,
// or - for multipart/byteranges - a list of parts, each some bytes of part
// header followed by a file range.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "preforkd/fd.hpp"
#include "preforkd/http/request.hpp"

namespace preforkd::http {

// Looks a std::string key up by string_view, without building a string.
struct MimeHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept
    {
        return std::hash<std::string_view>{}(s);
    }
};

// Extension (lower case, no dot) -> media type.  A hash table: a lookup is
// one bucket and one node, where a tree of Debian's ~1,500 extensions is a
// dozen nodes scattered over the heap, each a cache miss in a worker that
// has just been woken.
using MimeMap = std::unordered_map<std::string, std::string, MimeHash, std::equal_to<>>;

// Reads a mime.types file ("type ext ext ..." lines, # comments).  Throws
// std::system_error naming open and the path when it cannot be read.
MimeMap load_mime_types(const std::string& path);

struct Site {
    std::string root;                     // absolute, no trailing slash
    std::vector<std::string> index;       // tried in order
    bool autoindex = false;
    bool server_tokens = false;
    const MimeMap* mime = nullptr;
    std::string default_type = "application/octet-stream";
    // Symlinks are always followed while they lead to somewhere beneath the
    // root; one leading outside it is a 403 unless this is true.  Either way
    // ".." can never climb out: paths are normalised before any lookup.
    bool follow_symlinks = false;
    // Send "name.gz" (a regular file beside "name") with Content-Encoding:
    // gzip to clients whose Accept-Encoding allows gzip.
    bool gzip_static = false;
    // More range-specs than this in one Range field and the whole file is
    // sent instead; 0 turns byte ranges off.
    std::size_t max_ranges = 64;
};

// One part of a multipart/byteranges body: `text` (the part's delimiter and
// header fields), then `length` bytes of Response::file from `offset`.  The
// last part has only text, the closing delimiter.
struct FilePart {
    std::string text;
    off_t offset = 0;
    std::uint64_t length = 0;
};

struct Response {
    int status = 200;
    std::string head;          // status line, headers and the blank line
    std::string body;          // in-memory body (error pages, listings)
    Fd file;                   // file body, sent after `body` is empty
    off_t file_offset = 0;     // the single range of `file` to send ...
    std::uint64_t file_length = 0;
    std::vector<FilePart> parts;   // ... or, when not empty, these parts of it
    bool close = false;        // connection closes after this response
    // Why a 401, 403 or 404 was given ("fstatat(\"/srv/www/a\") failed:
    // Permission denied"), for the diagnostic log; never sent.
    std::string refusal;
    std::uint64_t body_bytes() const noexcept
    {
        std::uint64_t n = body.size() + file_length;
        for (const FilePart& p : parts) n += p.text.size() + p.length;
        return n;
    }
};

// What becomes of a request body (Request::has_body()) the responder never
// reads.  close_connection: the caller cannot skip it, so the response
// closes the connection.  discard: the caller promises to skip it with a
// BodyDiscarder (body.hpp) before parsing the next request, so the
// connection may stay open - except with "Expect: 100-continue", where the
// client may or may not send the body after our final answer and the next
// byte on the connection is in doubt.
enum class UnreadBody { close_connection, discard };

// Answers a complete request.  `close` forces "Connection: close" (shutdown,
// reload, keepalive_requests reached, or the client asked); the response's
// own `close` is then true.  HEAD gets the same head as GET and no body.
// `url_path`, when given, is request.path already percent-decoded and
// normalised (the site rules did it to find the location): not done twice.
Response respond(const Request& request, const Site& site, bool close,
                 UnreadBody body = UnreadBody::close_connection,
                 const std::string* url_path = nullptr);

// Takes back a response that has been sent: the next one built in this
// process reuses the storage of its head and body (up to 16 KiB each), so
// that a worker's answers after its first take no memory from the
// allocator.
void recycle(Response&& r) noexcept;

// Opens the descriptors of these roots now rather than at their first
// request, so that a worker's descriptors do not change with the requests
// it happens to get (a worker keeps one per root, up to 64).
void open_roots(const std::vector<std::string>& roots);

// An error response (small HTML body, Connection: close) for a status the
// parser or the loop decided, e.g. 400, 408, 431.
Response error_response(int status, const Site& site, bool head_only = false);

// Status line reason phrase ("Not Found"); "Unknown" for unknown codes.
const char* reason_phrase(int status) noexcept;

// RFC 9110 IMF-fixdate for `t` ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string format_http_date(time_t t);

}  // namespace preforkd::http
