// http/static_file.hpp - turns a parsed request into a response for a file.
//
// Pure apart from the file system: resolves the decoded path under the
// document root (never outside it), chooses index files, the /dir -> /dir/
// redirect, builds the status line and headers.  The connection loop sends
// the head and then the body (a file range via sendfile, or bytes).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include "preforkd/fd.hpp"
#include "preforkd/http/request.hpp"

namespace preforkd::http {

// Extension (lower case, no dot) -> media type.
using MimeMap = std::map<std::string, std::string>;

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
};

struct Response {
    int status = 200;
    std::string head;          // status line, headers and the blank line
    std::string body;          // in-memory body (error pages, listings)
    Fd file;                   // file body, sent after `body` is empty
    off_t file_offset = 0;
    std::uint64_t file_length = 0;
    bool close = false;        // connection closes after this response
    std::uint64_t body_bytes() const noexcept { return body.size() + file_length; }
};

// Answers a complete request.  `close` forces "Connection: close" (shutdown,
// reload, keepalive_requests reached, or the client asked); the response's
// own `close` is then true.  HEAD gets the same head as GET and no body.
Response respond(const Request& request, const Site& site, bool close);

// An error response (small HTML body, Connection: close) for a status the
// parser or the loop decided, e.g. 400, 408, 431.
Response error_response(int status, const Site& site, bool head_only = false);

// Status line reason phrase ("Not Found"); "Unknown" for unknown codes.
const char* reason_phrase(int status) noexcept;

// RFC 9110 IMF-fixdate for `t` ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string format_http_date(time_t t);

}  // namespace preforkd::http
