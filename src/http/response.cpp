// http/response.cpp - status reasons, response heads and error pages.
//
// The reason phrases are a sorted constexpr table with one binary search.
// Error pages are fixed text built from the status alone: nothing from the
// request is ever echoed, so there is nothing to escape.  Which statuses
// close the connection is decided in one place, finish_response(): after a
// 400 or a 5xx the byte stream can no longer be trusted to be in step, while
// a 404 or 304 is an ordinary answer and keeps the connection alive.
#include "preforkd/http/response.hpp"
#include "preforkd/http/date.hpp"

#include <algorithm>
#include <array>
#include <ctime>

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::http {
namespace {

struct Reason {
    int status;
    const char* text;
};

constexpr std::array<Reason, 41> kReasons = {{
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
}};

static_assert(std::is_sorted(kReasons.begin(), kReasons.end(),
                             [](const Reason& a, const Reason& b) { return a.status < b.status; }),
              "kReasons must stay sorted for the binary search");

bool always_closes(int status) noexcept { return status == 400 || status >= 500; }

std::string status_text(int status)
{
    return std::to_string(status) + " " + reason_phrase(status);
}

}  // namespace

const char* reason_phrase(int status) noexcept
{
    auto it = std::lower_bound(kReasons.begin(), kReasons.end(), status,
                               [](const Reason& r, int s) { return r.status < s; });
    return it != kReasons.end() && it->status == status ? it->text : "Unknown";
}

namespace {

// The head and body of the last response recycle() took back, emptied.
// A larger buffer than kKeptCapacity (a long directory listing) goes back
// to the allocator instead.
constexpr std::size_t kKeptCapacity = 16 * 1024;
thread_local std::string t_spare_head;   // thread_local: see worker.cpp
thread_local std::string t_spare_body;

std::string take_spare(std::string& spare) noexcept
{
    std::string s = std::move(spare);
    s.clear();
    return s;
}

}  // namespace

void recycle(Response&& r) noexcept
{
    if (r.head.capacity() <= kKeptCapacity)
        t_spare_head = std::move(r.head);
    if (r.body.capacity() <= kKeptCapacity)
        t_spare_body = std::move(r.body);
}

Response start_response(const Exchange& x, int status)
{
    Response r;
    r.status = status;
    r.head = take_spare(t_spare_head);
    r.body = take_spare(t_spare_body);
    // Room for a typical head and a small body appended to it for sending.
    r.head.reserve(512);
    r.head.append("HTTP/1.1 ").append(status_text(status)).append("\r\n");
    add_header(r, "Date", current_http_date());
    add_header(r, "Server", x.site.server_tokens ? "preforkd/" PREFORKD_VERSION : "preforkd");
    return r;
}

void add_header(Response& r, std::string_view name, std::string_view value)
{
    r.head.append(name).append(": ").append(value).append("\r\n");
}

Response finish_response(const Exchange& x, Response r)
{
    r.close = x.close || always_closes(r.status);
    if (r.close)
        add_header(r, "Connection", "close");
    else if (x.version_minor == 0)
        add_header(r, "Connection", "keep-alive");   // HTTP/1.0 closes unless told
    r.head += "\r\n";
    if (x.head_only) {
        r.body.clear();
        r.file.reset();
        r.file_offset = 0;
        r.file_length = 0;
        r.parts.clear();
    }
    return r;
}

Response status_page(const Exchange& x, int status)
{
    Response r = start_response(x, status);
    std::string title = status_text(status);
    r.body = "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><h1>" +
             title + "</h1></body></html>\n";
    add_header(r, "Content-Type", "text/html; charset=utf-8");
    add_header(r, "Content-Length", std::to_string(r.body.size()));
    return r;
}

Response error_response(int status, const Site& site, bool head_only)
{
    Exchange x{site, 1, true, head_only};
    return finish_response(x, status_page(x, status));
}

}  // namespace preforkd::http
