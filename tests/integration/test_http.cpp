// test_http.cpp - HTTP/1.1 protocol behaviour of the real daemon, over raw
// loopback sockets and with curl(1): the status codes the server produces,
// the request-smuggling rejections (each a 400 and a closed connection),
// HEAD against GET, pipelining, keep-alive reuse, bodies of refused methods
// skipped in step, slow clients (408), the Server header and the access log.
// File semantics (ranges, validators, directories, traversal, symlinks,
// gzip_static, a large file) are in test_http_files.cpp, same suite.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(http, .init = setup, .fini = cleanup, .timeout = 30);

namespace {

using Clock = std::chrono::steady_clock;

// How long a rejected connection may take to be closed by the server.
constexpr Duration kCloseWait = 3s;

Daemon started(const std::string& http_extra = "", const Options& o = {})
{
    Daemon d = prepared(http_extra, o);
    start(d);
    return d;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
bool is_imf_fixdate(const std::string& s)
{
    static const std::regex re(
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
        "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
        "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT");
    return std::regex_match(s, re);
}

const std::string kGetX = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";

// A request that must be refused with `status`, then the connection closed
// and nothing after it (a valid GET pipelined behind it) answered.
void expect_rejected(const Daemon& d, const std::string& what, const std::string& bytes,
                     int status)
{
    Exchange x = exchange_raw(d.port, bytes + kGetX);
    D_ASSERT(d, x.r.ok, "%s (%s): no response: %s", what.c_str(), printable(bytes).c_str(),
             x.r.error.c_str());
    D_ASSERT(d, x.r.status == status, "%s (%s): got '%s', want %d", what.c_str(),
             printable(bytes).c_str(), x.r.status_line.c_str(), status);
    D_ASSERT(d, x.r.header("connection") == "close",
             "%s: a %d must say 'Connection: close', got '%s'", what.c_str(), status,
             x.r.header("connection").c_str());
    D_ASSERT(d, x.closed, "%s: the server did not close the connection after its %d", what.c_str(),
             status);
    D_ASSERT(d, x.after.empty(),
             "%s: the GET pipelined behind the rejected request was answered: '%s'",
             what.c_str(), printable(x.after).c_str());
    D_ASSERT(d, x.r.header("content-type").rfind("text/html", 0) == 0,
             "%s: error page Content-Type '%s'", what.c_str(), x.r.header("content-type").c_str());
}

}  // namespace

// ---- 200 and the fields every response carries -------------------------------

Test(http, ok_200_carries_the_standard_fields, .timeout = 20) {
    Daemon d = prepared();
    // A known modification time, so Last-Modified can be checked exactly.
    struct timespec times[2] = {{1577934245, 0}, {1577934245, 0}};   // 2020-01-02 03:04:05 UTC
    D_ASSERT(d, utimensat(AT_FDCWD, d.path("www/x.txt").c_str(), times, 0) == 0, "utimensat");
    start(d);

    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET /x.txt: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, r.status_line == "HTTP/1.1 200 OK", "status line '%s'", r.status_line.c_str());
    D_ASSERT(d, r.body == "hello from preforkd\n", "body '%s'", r.body.c_str());
    D_ASSERT(d, r.header("content-length") == "20", "Content-Length '%s'",
             r.header("content-length").c_str());
    D_ASSERT(d, r.header("content-type") == "text/plain; charset=utf-8",
             "Content-Type of x.txt '%s', want 'text/plain; charset=utf-8'",
             r.header("content-type").c_str());
    D_ASSERT(d, is_imf_fixdate(r.header("date")), "Date '%s' is not an IMF-fixdate",
             r.header("date").c_str());
    D_ASSERT(d, r.header("last-modified") == "Thu, 02 Jan 2020 03:04:05 GMT",
             "Last-Modified '%s', want 'Thu, 02 Jan 2020 03:04:05 GMT'",
             r.header("last-modified").c_str());
    std::string etag = r.header("etag");
    D_ASSERT(d, etag.size() > 2 && etag.front() == '"' && etag.back() == '"',
             "ETag '%s' is not a strong quoted entity tag", etag.c_str());
    D_ASSERT(d, r.header("accept-ranges") == "bytes", "Accept-Ranges '%s'",
             r.header("accept-ranges").c_str());
    D_ASSERT(d, r.header("connection") == "close", "we sent Connection: close; reply said '%s'",
             r.header("connection").c_str());

    // HTML gets its type from /etc/mime.types too.
    Response index = http_get(d.port, "/index.html");
    D_ASSERT(d, index.ok && index.header("content-type") == "text/html; charset=utf-8",
             "Content-Type of index.html '%s'", index.header("content-type").c_str());

    // HTTP/1.0 without Host is fine, and closes unless asked to keep alive.
    Exchange old = exchange_raw(d.port, "GET /x.txt HTTP/1.0\r\n\r\n");
    D_ASSERT(d, old.r.ok && old.r.status == 200 && old.r.body == "hello from preforkd\n",
             "HTTP/1.0 GET: %s '%s'", old.r.error.c_str(), old.r.status_line.c_str());
    D_ASSERT(d, old.closed, "HTTP/1.0 without keep-alive: connection left open");
    NO_SANITIZER_REPORTS();
}

Test(http, server_header_has_no_version_unless_server_tokens, .timeout = 20) {
    Daemon plain = started();
    Response r = http_get(plain.port, "/x.txt");
    D_ASSERT(plain, r.ok, "GET: %s", r.error.c_str());
    D_ASSERT(plain, r.header("server") == "preforkd", "default Server header '%s', want 'preforkd'",
             r.header("server").c_str());
    Response missing = http_get(plain.port, "/nope");
    D_ASSERT(plain, missing.header("server") == "preforkd", "Server on a 404: '%s'",
             missing.header("server").c_str());
    Exchange bad = exchange_raw(plain.port, "GET / HTTP/1.1\r\n\r\n");
    D_ASSERT(plain, bad.r.ok && bad.r.status == 400 && bad.r.header("server") == "preforkd",
             "Server on a 400: '%s' (%s)", bad.r.header("server").c_str(),
             bad.r.status_line.c_str());

    Daemon tokens = started("server_tokens = true;");
    std::string version = project_version();
    cr_assert(!version.empty(), "no VERSION in $PREFORKD_SRCDIR/Makefile");
    Response t = http_get(tokens.port, "/x.txt");
    D_ASSERT(tokens, t.ok && t.header("server") == "preforkd/" + version,
             "server_tokens = true: Server '%s', want 'preforkd/%s'", t.header("server").c_str(),
             version.c_str());
    RunResult c = curl(tokens, {"-o", "/dev/null", "-w", "%{header_json}", url(tokens, "/x.txt")});
    D_ASSERT(tokens, c.status == 0 && c.out.find("\"preforkd/" + version + "\"") != std::string::npos,
             "curl did not see 'Server: preforkd/%s': %s %s", version.c_str(), c.out.c_str(),
             c.err.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- HEAD ---------------------------------------------------------------------

Test(http, head_is_get_without_the_body, .timeout = 20) {
    Daemon d = prepared();
    make_dir(d.path("www/dir"));
    write_file(d.path("www/dir/index.html"), "<p>dir index</p>\n");
    make_dir(d.path("www/noindex"));
    start(d);

    for (const char* path : {"/x.txt", "/", "/index.html", "/dir", "/dir/", "/noindex/",
                             "/missing.txt", "/x.txt?query=1"}) {
        Exchange get = exchange_raw(d.port, request("GET", path, false));
        Exchange head = exchange_raw(d.port, request("HEAD", path, false), true);
        D_ASSERT(d, get.r.ok && head.r.ok, "%s: GET %s / HEAD %s", path, get.r.error.c_str(),
                 head.r.error.c_str());
        D_ASSERT(d, head.r.status_line == get.r.status_line, "%s: HEAD '%s' but GET '%s'", path,
                 head.r.status_line.c_str(), get.r.status_line.c_str());
        auto g = get.r.headers, h = head.r.headers;
        D_ASSERT(d, g.erase("date") == 1 && h.erase("date") == 1, "%s: a response without Date",
                 path);
        std::string diff;
        for (const auto& [k, v] : g)
            if (h.count(k) == 0 || h[k] != v)
                diff += k + ": GET '" + v + "' HEAD '" + (h.count(k) ? h[k] : "(absent)") + "'\n";
        for (const auto& [k, v] : h)
            if (g.count(k) == 0) diff += k + ": only in HEAD ('" + v + "')\n";
        D_ASSERT(d, diff.empty(), "%s: HEAD and GET headers differ:\n%s", path, diff.c_str());
        D_ASSERT(d, head.closed && head.after.empty(),
                 "%s: HEAD sent %zu bytes after its header (closed: %d): '%s'", path,
                 head.after.size(), head.closed, printable(head.after).c_str());
        if (get.r.headers.count("content-length"))
            D_ASSERT(d, get.r.body.size() == std::stoul(get.r.header("content-length")),
                     "%s: GET body is %zu bytes, Content-Length %s", path, get.r.body.size(),
                     get.r.header("content-length").c_str());
    }

    // curl -I agrees with the length of the GET.
    RunResult c = curl(d, {"-I", url(d, "/x.txt")});
    D_ASSERT(d, c.status == 0 && c.out.find("Content-Length: 20\r\n") != std::string::npos,
             "curl -I: exit %d, '%s'", c.status, c.out.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- 4xx and 5xx statuses -----------------------------------------------------

Test(http, not_found_404_keeps_the_connection_and_echoes_nothing, .timeout = 20) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    D_ASSERT(d, send_all(fd, request("GET", "/no-such-<script>alert(1)</script>.html")), "send");
    Response r = read_response(fd, buffer);
    D_ASSERT(d, r.ok && r.status == 404, "GET missing: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, r.status_line == "HTTP/1.1 404 Not Found", "status line '%s'",
             r.status_line.c_str());
    D_ASSERT(d, r.body.find("<script>") == std::string::npos && r.body.find("alert") == std::string::npos,
             "the 404 page echoes the request target: '%s'", r.body.c_str());
    D_ASSERT(d, r.header("content-type").rfind("text/html", 0) == 0 && !r.body.empty(),
             "404 page: type '%s' body '%s'", r.header("content-type").c_str(), r.body.c_str());
    D_ASSERT(d, r.header("connection") != "close", "a 404 closed the keep-alive connection");
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt", false)), "send 2");
    Response again = read_response(fd, buffer);
    D_ASSERT(d, again.ok && again.status == 200 && again.body == "hello from preforkd\n",
             "request after a 404 on the same connection: %s '%s'", again.error.c_str(),
             again.status_line.c_str());
    close(fd);

    RunResult c = curl(d, {"-o", "/dev/null", "-w", "%{http_code}", url(d, "/nothing/here")});
    D_ASSERT(d, c.out == "404", "curl: http_code '%s' (%s)", c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, refused_methods_405_with_allow_unknown_501, .timeout = 20) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "TRACE"}) {
        std::string req = std::string(m) + " /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
        D_ASSERT(d, send_all(fd, req), "send %s", m);
        Response r = read_response(fd, buffer);
        D_ASSERT(d, r.ok && r.status == 405, "%s /x.txt: %s '%s', want 405", m, r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.header("allow") == "GET, HEAD, OPTIONS", "%s: Allow '%s'", m,
                 r.header("allow").c_str());
        D_ASSERT(d, r.header("connection") != "close", "%s: a 405 closed the connection", m);
    }
    D_ASSERT(d, send_all(fd, "OPTIONS /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"), "send OPTIONS");
    Response o = read_response(fd, buffer);
    D_ASSERT(d, o.ok && o.status == 200 && o.header("allow") == "GET, HEAD, OPTIONS" && o.body.empty(),
             "OPTIONS: %s '%s' Allow '%s'", o.error.c_str(), o.status_line.c_str(),
             o.header("allow").c_str());
    D_ASSERT(d, send_all(fd, "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n"), "send OPTIONS *");
    Response star = read_response(fd, buffer);
    D_ASSERT(d, star.ok && star.status == 200 && star.header("allow") == "GET, HEAD, OPTIONS",
             "OPTIONS *: %s '%s'", star.error.c_str(), star.status_line.c_str());
    close(fd);

    RunResult c = curl(d, {"-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}",
                           url(d, "/x.txt")});
    D_ASSERT(d, c.out == "405", "curl -X DELETE: '%s' %s", c.out.c_str(), c.err.c_str());

    // Unknown method tokens, and methods are case-sensitive: 501, closed.
    for (const char* m : {"BREW", "get", "PROPFIND"}) {
        Exchange x = exchange_raw(d.port, std::string(m) + " /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
        D_ASSERT(d, x.r.ok && x.r.status == 501, "%s: %s '%s', want 501", m, x.r.error.c_str(),
                 x.r.status_line.c_str());
        D_ASSERT(d, x.r.status_line == "HTTP/1.1 501 Not Implemented", "%s: '%s'", m,
                 x.r.status_line.c_str());
        D_ASSERT(d, x.closed && x.r.header("connection") == "close",
                 "%s: a 501 should close the connection (closed %d, Connection '%s')", m,
                 x.closed, x.r.header("connection").c_str());
    }
    NO_SANITIZER_REPORTS();
}

// HTTP/1.2 to 1.9 are served as 1.1 (test_strict.cpp, suite http_strict).
Test(http, major_versions_other_than_1_get_505, .timeout = 20) {
    Daemon d = started();
    for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0"}) {
        std::string req = std::string("GET /x.txt ") + v + "\r\nHost: localhost\r\n\r\n";
        Exchange x = exchange_raw(d.port, req);
        D_ASSERT(d, x.r.ok && x.r.status == 505, "%s: %s '%s', want 505", v, x.r.error.c_str(),
                 x.r.status_line.c_str());
        D_ASSERT(d, x.r.status_line == "HTTP/1.1 505 HTTP Version Not Supported", "%s: '%s'", v,
                 x.r.status_line.c_str());
        D_ASSERT(d, x.closed, "%s: connection not closed after the 505", v);
    }
    // Not a version at all: 400.
    expect_rejected(d, "lower-case version", "GET /x.txt http/1.1\r\nHost: localhost\r\n\r\n", 400);
    expect_rejected(d, "version HTTP/11", "GET /x.txt HTTP/11\r\nHost: localhost\r\n\r\n", 400);
    NO_SANITIZER_REPORTS();
}

Test(http, over_long_target_414_large_head_431, .timeout = 20) {
    Daemon d = started();
    // max_header_size is 8 KiB by default.
    std::string target = "/" + std::string(9000, 'a');
    expect_rejected(d, "9000-byte target", "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n",
                    414);
    Exchange x = exchange_raw(d.port, "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    D_ASSERT(d, x.r.status_line == "HTTP/1.1 414 URI Too Long", "'%s'", x.r.status_line.c_str());

    expect_rejected(d, "9000-byte header field",
                    "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: " + std::string(9000, 'b') +
                        "\r\n\r\n",
                    431);
    std::string many = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n";
    for (int i = 0; i < 120; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    expect_rejected(d, "120 header fields (max_headers = 100)", many + "\r\n", 431);
    Exchange y = exchange_raw(d.port, many + "\r\n");
    D_ASSERT(d, y.r.status_line == "HTTP/1.1 431 Request Header Fields Too Large", "'%s'",
             y.r.status_line.c_str());

    // Just under the limits is served.
    std::string fits = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nX-Pad: " +
                       std::string(7000, 'p') + "\r\nConnection: close\r\n\r\n";
    Exchange ok = exchange_raw(d.port, fits);
    D_ASSERT(d, ok.r.ok && ok.r.status == 200, "a 7 KB head: %s '%s'", ok.r.error.c_str(),
             ok.r.status_line.c_str());

    // curl sees the 414 too.
    RunResult c = curl(d, {"-o", "/dev/null", "-w", "%{http_code}", url(d, target)});
    D_ASSERT(d, c.out == "414", "curl long URL: '%s' %s", c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

// Every request a front-end proxy might frame differently from us is a 400,
// the connection is closed, and nothing pipelined after it is answered.
Test(http, smuggling_class_requests_are_400_and_closed, .timeout = 20) {
    Daemon d = started();
    const std::string host = "Host: localhost\r\n";
    struct Case {
        std::string name, bytes;
    };
    std::vector<Case> cases = {
        {"Content-Length with Transfer-Encoding",
         "POST /x.txt HTTP/1.1\r\n" + host +
             "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding before Content-Length",
         "POST /x.txt HTTP/1.1\r\n" + host +
             "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
        {"duplicate Content-Length, same value",
         "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
        {"duplicate Content-Length, different values",
         "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
        {"Content-Length list", "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\nhello"},
        {"signed Content-Length", "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello"},
        {"negative Content-Length", "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n"},
        {"hex Content-Length", "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\nhello"},
        {"Transfer-Encoding not ending in chunked",
         "POST /x.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding in HTTP/1.0",
         "POST /x.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"bare LF line ends", "GET /x.txt HTTP/1.1\nHost: localhost\n\n"},
        {"bare LF after one header", "GET /x.txt HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n"},
        {"bare LF after the request line", "GET /x.txt HTTP/1.1\nHost: localhost\r\n\r\n"},
        {"bare CR inside a header", "GET /x.txt HTTP/1.1\r\nHost: localhost\rX-A: b\r\n\r\n"},
        {"obs-fold (space)", "GET /x.txt HTTP/1.1\r\n" + host + "X-Long: a\r\n  b\r\n\r\n"},
        {"obs-fold (tab)", "GET /x.txt HTTP/1.1\r\n" + host + "X-Long: a\r\n\tb\r\n\r\n"},
        {"space before colon", "GET /x.txt HTTP/1.1\r\nHost : localhost\r\n\r\n"},
        {"tab before colon", "GET /x.txt HTTP/1.1\r\n" + host + "X-A\t: b\r\n\r\n"},
        {"space before colon of Content-Length",
         "POST /x.txt HTTP/1.1\r\n" + host + "Content-Length : 5\r\n\r\nhello"},
        {"missing Host in HTTP/1.1", "GET /x.txt HTTP/1.1\r\nUser-Agent: t\r\n\r\n"},
        {"two Host fields", "GET /x.txt HTTP/1.1\r\n" + host + host + "\r\n"},
        {"two different Host fields", "GET /x.txt HTTP/1.1\r\n" + host + "Host: evil.example\r\n\r\n"},
        {"NUL in target", std::string("GET /x\0.txt HTTP/1.1\r\n", 22) + host + "\r\n"},
        {"control byte in target", "GET /x\x01.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"DEL in target", "GET /x\x7f.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"tab in target", "GET /x\t.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"percent-encoded NUL in target", "GET /x%00.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"percent-encoded control byte", "GET /x%0a.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"bad percent escape", "GET /x%zz.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"NUL in a header value", std::string("GET /x.txt HTTP/1.1\r\n") + host +
                                      std::string("X-A: a\0b\r\n\r\n", 12)},
        {"control byte in a header value", "GET /x.txt HTTP/1.1\r\n" + host + "X-A: a\x01" "b\r\n\r\n"},
        {"two spaces in the request line", "GET  /x.txt HTTP/1.1\r\n" + host + "\r\n"},
        {"header line without colon", "GET /x.txt HTTP/1.1\r\n" + host + "NoColon\r\n\r\n"},
        {"space inside Host", "GET /x.txt HTTP/1.1\r\nHost: a b\r\n\r\n"},
        {"slash inside Host", "GET /x.txt HTTP/1.1\r\nHost: a/b\r\n\r\n"},
        {"asterisk target for GET", "GET * HTTP/1.1\r\n" + host + "\r\n"},
        {"userinfo in absolute-form", "GET http://user@localhost/x.txt HTTP/1.1\r\n" + host + "\r\n"},
    };
    for (const Case& c : cases) expect_rejected(d, c.name, c.bytes, 400);

    Exchange x = exchange_raw(d.port, "GET /x.txt HTTP/1.1\r\nHost : localhost\r\n\r\n");
    D_ASSERT(d, x.r.status_line == "HTTP/1.1 400 Bad Request", "'%s'", x.r.status_line.c_str());

    // Controls: the same requests, well-formed, are served.
    Exchange good = exchange_raw(d.port, "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nX-Long: a b\r\n"
                                    "Connection: close\r\n\r\n");
    D_ASSERT(d, good.r.ok && good.r.status == 200, "well-formed control: %s '%s'",
             good.r.error.c_str(), good.r.status_line.c_str());
    Exchange absolute = exchange_raw(d.port, "GET http://localhost/x.txt HTTP/1.1\r\nHost: other\r\n"
                                        "Connection: close\r\n\r\n");
    D_ASSERT(d, absolute.r.ok && absolute.r.status == 200 &&
                    absolute.r.body == "hello from preforkd\n",
             "absolute-form target: %s '%s'", absolute.r.error.c_str(),
             absolute.r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- 408: a client that does not finish its head in header_timeout ------------

Test(http, slow_header_client_gets_408_and_idle_keepalive_closes, .timeout = 20) {
    Options o;
    o.keepalive_timeout = 1;
    Daemon d = started("header_timeout = 1;", o);

    // Half a head, then nothing.
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    auto t0 = Clock::now();
    D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n"), "send");
    std::string buffer;
    Response r = read_response(fd, buffer, false, 5s);
    double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    D_ASSERT(d, r.ok && r.status == 408, "half a head: %s '%s', want 408 after header_timeout",
             r.error.c_str(), r.status_line.c_str());
    D_ASSERT(d, r.status_line == "HTTP/1.1 408 Request Timeout", "'%s'", r.status_line.c_str());
    D_ASSERT(d, waited > 0.8 && waited < 4.0, "408 after %.2f s, want about 1 s", waited);
    D_ASSERT(d, r.header("connection") == "close", "408 without Connection: close");
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && rest.empty(), "connection not closed after the 408 (got '%s')",
             printable(rest).c_str());
    close(fd);

    // Slowloris: a byte every 200 ms does not extend the deadline.
    fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect 2");
    std::string head = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + std::string(200, 's');
    t0 = Clock::now();
    std::string got;
    bool closed = false;
    for (size_t i = 0; i < head.size() && !closed; ++i) {
        if (!send_all(fd, head.substr(i, 1))) break;   // the server may have closed already
        // Paces the drip; returns early when the server answers.
        auto chunk = recv_some(fd, 200ms);
        if (chunk) {
            got += *chunk;
            closed = chunk->empty();
            if (got.find("\r\n\r\n") != std::string::npos) break;
        }
        D_ASSERT(d, Clock::now() - t0 < 5s, "dripping client still served after 5 s: '%s'",
                 printable(got).c_str());
    }
    if (got.find("\r\n\r\n") == std::string::npos) {
        auto [more, e] = drain(fd, kCloseWait);
        got += more;
    }
    waited = std::chrono::duration<double>(Clock::now() - t0).count();
    D_ASSERT(d, got.rfind("HTTP/1.1 408 ", 0) == 0, "dripping client got '%s', want a 408",
             printable(got).c_str());
    D_ASSERT(d, waited < 4.0, "dripping client answered after %.2f s", waited);
    close(fd);

    // An idle keep-alive connection is closed silently after keepalive_timeout.
    fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect 3");
    buffer.clear();
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt")), "send 3");
    Response first = read_response(fd, buffer);
    D_ASSERT(d, first.ok && first.status == 200, "keep-alive GET: %s", first.error.c_str());
    t0 = Clock::now();
    auto [idle, idle_eof] = drain(fd, 5s);
    waited = std::chrono::duration<double>(Clock::now() - t0).count();
    D_ASSERT(d, idle_eof && idle.empty(),
             "idle keep-alive connection: want a silent close, got '%s' (closed %d)",
             printable(idle).c_str(), idle_eof);
    D_ASSERT(d, waited > 0.5 && waited < 4.0, "idle connection closed after %.2f s, want ~1 s",
             waited);
    close(fd);

    std::string access = d.path("access.log");
    bool logged = wait_until(
        [&] { return read_file(access).find("\" 408 ") != std::string::npos; }, 5s);
    D_ASSERT(d, logged, "no 408 in the access log:\n%s", read_file(access).c_str());
    NO_SANITIZER_REPORTS();
}

// ---- pipelining and keep-alive -------------------------------------------------

Test(http, three_pipelined_requests_answered_in_order, .timeout = 20) {
    Daemon d = prepared();
    write_file(d.path("www/a.txt"), "first\n");
    write_file(d.path("www/b.txt"), "second body\n");
    write_file(d.path("www/c.txt"), "third and last body\n");
    start(d);

    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string three = request("GET", "/a.txt") + request("GET", "/b.txt") + request("GET", "/c.txt");
    D_ASSERT(d, send_all(fd, three), "one write of three requests");
    std::string buffer;
    const char* want[][2] = {{"/a.txt", "first\n"}, {"/b.txt", "second body\n"},
                             {"/c.txt", "third and last body\n"}};
    for (auto& w : want) {
        Response r = read_response(fd, buffer);
        D_ASSERT(d, r.ok && r.status == 200, "pipelined %s: %s '%s'", w[0], r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.body == w[1], "pipelined %s answered out of order: body '%s', want '%s'",
                 w[0], r.body.c_str(), w[1]);
    }

    // A mix in one write: HEAD (no body), a 404, and a closing GET.
    std::string mix = request("HEAD", "/b.txt") + request("GET", "/missing") +
                      request("GET", "/c.txt", false);
    D_ASSERT(d, send_all(fd, mix), "second write");
    Response head = read_response(fd, buffer, true);
    D_ASSERT(d, head.ok && head.status == 200 && head.header("content-length") == "12",
             "pipelined HEAD: %s '%s'", head.error.c_str(), head.status_line.c_str());
    Response missing = read_response(fd, buffer);
    D_ASSERT(d, missing.ok && missing.status == 404,
             "pipelined GET after HEAD: %s '%s' (a HEAD body would show here)",
             missing.error.c_str(), missing.status_line.c_str());
    Response last = read_response(fd, buffer);
    D_ASSERT(d, last.ok && last.status == 200 && last.body == "third and last body\n",
             "third of the mix: %s '%s' '%s'", last.error.c_str(), last.status_line.c_str(),
             last.body.c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && buffer.empty() && rest.empty(),
             "after Connection: close: closed %d, extra '%s%s'", eof, buffer.c_str(), rest.c_str());
    close(fd);
    NO_SANITIZER_REPORTS();
}

Test(http, curl_reuses_the_keepalive_connection, .timeout = 20) {
    Daemon d = prepared();
    write_file(d.path("www/a.txt"), "first\n");
    start(d);
    std::string out1 = d.path("out1"), out2 = d.path("out2");
    RunResult r = curl(d, {"-v", "-w", "%{num_connects}\\n", url(d, "/a.txt"), "-o", out1,
                           url(d, "/x.txt"), "-o", out2});
    D_ASSERT(d, r.status == 0, "curl exited %d: %s", r.status, r.err.c_str());
    D_ASSERT(d, read_file(out1) == "first\n" && read_file(out2) == "hello from preforkd\n",
             "curl got '%s' and '%s'", read_file(out1).c_str(), read_file(out2).c_str());
    D_ASSERT(d, r.err.find("Re-using existing connection") != std::string::npos,
             "curl -v does not show connection reuse:\n%s", r.err.c_str());
    D_ASSERT(d, r.out == "1\n0\n", "num_connects per transfer '%s', want '1\\n0\\n'",
             printable(r.out).c_str());

    // HTTP/1.0 with keep-alive asked for is kept alive, and says so.
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    D_ASSERT(d, send_all(fd, "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), "send");
    Response k = read_response(fd, buffer);
    D_ASSERT(d, k.ok && k.status == 200 && k.header("connection") == "keep-alive",
             "HTTP/1.0 keep-alive: %s '%s' Connection '%s'", k.error.c_str(),
             k.status_line.c_str(), k.header("connection").c_str());
    D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.0\r\n\r\n"), "send 2");
    Response k2 = read_response(fd, buffer);
    D_ASSERT(d, k2.ok && k2.status == 200 && k2.body == "hello from preforkd\n",
             "second HTTP/1.0 request: %s", k2.error.c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof, "HTTP/1.0 without keep-alive: not closed");
    close(fd);
    NO_SANITIZER_REPORTS();
}

// RFC 9112 9.6: a server that closes while requests are still arriving must
// not let the TCP reset erase responses it has already sent.  Here the
// client pipelines more requests than keepalive_requests allows, reading
// through a small receive buffer (a slow or distant client): it must still
// get the responses the server sent and logged, the last one saying
// "Connection: close", before the connection ends.
Test(http, pipelining_past_keepalive_requests_loses_no_sent_response, .timeout = 20) {
    Daemon d = prepared("keepalive_requests = 2;");
    std::string big;
    for (int i = 0; big.size() < 300000; ++i) big += format("%09d\n", i);
    write_file(d.path("www/m.txt"), big);
    start(d);

    int fd = connect_tcp(d.port, 4096);
    D_ASSERT(d, fd >= 0, "connect");
    // Two requests the server will answer, then 30 KB more it will not read.
    std::string burst;
    for (int i = 0; i < 800; ++i) burst += "GET /m.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    D_ASSERT(d, send_all(fd, burst), "send %zu bytes of pipelined requests", burst.size());
    std::string buffer;
    Response first = read_response(fd, buffer, false, 10s);
    D_ASSERT(d, first.ok && first.status == 200 && first.body == big,
             "response 1 of 2 (keepalive_requests = 2): %s '%s', body %zu of %zu bytes - the "
             "server closed with unread requests pending and its reset discarded what it had "
             "sent (no half-close / lingering close)",
             first.error.c_str(), first.status_line.c_str(), first.body.size(), big.size());
    Response second = read_response(fd, buffer, false, 10s);
    D_ASSERT(d, second.ok && second.status == 200 && second.body == big,
             "response 2 of 2: %s '%s' (%zu of %zu bytes)", second.error.c_str(),
             second.status_line.c_str(), second.body.size(), big.size());
    D_ASSERT(d, second.header("connection") == "close",
             "the last response before keepalive_requests ends the connection must say "
             "'Connection: close', got '%s'", second.header("connection").c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && buffer.empty() && rest.empty(),
             "after the last response: closed %d, %zu more bytes", eof, buffer.size() + rest.size());
    close(fd);
    NO_SANITIZER_REPORTS();
}

// The body of a refused POST is skipped, never parsed as the next request.
Test(http, post_body_pipelined_before_get_405_then_200, .timeout = 20) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    // The body looks like a request of its own: were it parsed as one, a
    // 404 for /smuggled would appear.
    std::string body = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    std::string post = "POST /x.txt HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    std::string chunked = "PUT /x.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n1b\r\nGET /smuggled2 HTTP/1.1\r\n\r\n\r\n0\r\n\r\n";
    D_ASSERT(d, send_all(fd, post + request("GET", "/x.txt") + chunked + request("GET", "/index.html", false)),
             "send");
    std::string buffer;
    Response r1 = read_response(fd, buffer);
    D_ASSERT(d, r1.ok && r1.status == 405 && r1.header("allow") == "GET, HEAD, OPTIONS",
             "POST with a body: %s '%s' Allow '%s'", r1.error.c_str(), r1.status_line.c_str(),
             r1.header("allow").c_str());
    D_ASSERT(d, r1.header("connection") != "close", "the 405 closed the connection");
    Response r2 = read_response(fd, buffer);
    D_ASSERT(d, r2.ok && r2.status == 200 && r2.body == "hello from preforkd\n",
             "GET after the POST body: %s '%s' body '%s'", r2.error.c_str(),
             r2.status_line.c_str(), r2.body.c_str());
    Response r3 = read_response(fd, buffer);
    D_ASSERT(d, r3.ok && r3.status == 405, "chunked PUT: %s '%s'", r3.error.c_str(),
             r3.status_line.c_str());
    Response r4 = read_response(fd, buffer);
    D_ASSERT(d, r4.ok && r4.status == 200 && r4.body == "<h1>index of www</h1>\n",
             "GET after the chunked body: %s '%s' body '%s'", r4.error.c_str(),
             r4.status_line.c_str(), r4.body.c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && buffer.empty() && rest.empty(),
             "something more was answered (a smuggled request?): '%s%s'",
             printable(buffer).c_str(), printable(rest).c_str());
    close(fd);

    // A GET with a body: served, body skipped, the next request in step.
    fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect 2");
    buffer.clear();
    D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"
                             "GET /" + request("GET", "/index.html", false)),
             "send");
    Response g1 = read_response(fd, buffer);
    Response g2 = read_response(fd, buffer);
    D_ASSERT(d, g1.ok && g1.status == 200 && g2.ok && g2.status == 200 &&
                    g2.body == "<h1>index of www</h1>\n",
             "GET with a 5-byte body, then GET: '%s' / '%s' %s", g1.status_line.c_str(),
             g2.status_line.c_str(), g2.error.c_str());
    close(fd);

    // A body over max_discard_body (64 KiB) is not read: 413 Content Too
    // Large (as nginx answers a body over client_max_body_size, before the
    // method is looked at), and the connection says it closes, and does.
    fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect 3");
    buffer.clear();
    D_ASSERT(d, send_all(fd, "POST /x.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\n\r\n"),
             "send");
    Response huge = read_response(fd, buffer);
    D_ASSERT(d, huge.ok && huge.status == 413 && huge.header("connection") == "close",
             "POST with a 10 MB body: %s '%s' Connection '%s'", huge.error.c_str(),
             huge.status_line.c_str(), huge.header("connection").c_str());
    auto [more, closed] = drain(fd, kCloseWait);
    D_ASSERT(d, closed && more.empty(), "not closed after refusing a 10 MB body");
    close(fd);

    // curl posting a form gets the 405 too.
    RunResult c = curl(d, {"-d", "a=1&b=2", "-o", "/dev/null", "-w", "%{http_code}", url(d, "/x.txt")});
    D_ASSERT(d, c.out == "405", "curl -d: '%s' %s", c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- access log ------------------------------------------------------------------

// "combined" is exactly the standard Combined Log Format: strict parsers
// break on a field after the User-Agent (the timing is combined_timing's).
Test(http, access_log_line_is_standard_combined_format, .timeout = 20) {
    Daemon d = started();
    std::string req = "GET /x.txt?from=itest HTTP/1.1\r\nHost: localhost\r\n"
                      "Referer: http://referer.example/page\r\nUser-Agent: itest-agent/2.0\r\n"
                      "Connection: close\r\n\r\n";
    Exchange x = exchange_raw(d.port, req);
    D_ASSERT(d, x.r.ok && x.r.status == 200, "GET: %s", x.r.error.c_str());
    Exchange missing = exchange_raw(d.port, "GET /missing.txt HTTP/1.1\r\nHost: localhost\r\n"
                                       "User-Agent: x\" 200 1 \"forged\r\nConnection: close\r\n\r\n");
    D_ASSERT(d, missing.r.ok && missing.r.status == 404, "GET missing: %s", missing.r.error.c_str());
    Exchange bad = exchange_raw(d.port, "GET /bad HTTP/1.1\r\n\r\n");
    D_ASSERT(d, bad.r.ok && bad.r.status == 400, "missing Host: %s", bad.r.error.c_str());

    std::string access = d.path("access.log");
    bool all = wait_until([&] { return lines_of(read_file(access)).size() >= 3; }, 5s);
    D_ASSERT(d, all, "access log has %zu lines after 3 requests:\n%s",
             lines_of(read_file(access)).size(), read_file(access).c_str());
    std::string text = read_file(access);
    std::string ok_line, missing_line, bad_line;
    for (const auto& l : lines_of(text)) {
        if (l.find("/x.txt?from=itest") != std::string::npos) ok_line = l;
        if (l.find("/missing.txt") != std::string::npos) missing_line = l;
        if (l.find("/bad ") != std::string::npos) bad_line = l;
    }
    static const std::regex combined(
        R"re(127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\] )re"
        R"re("GET /x\.txt\?from=itest HTTP/1\.1" 200 20 "http://referer\.example/page" "itest-agent/2\.0")re");
    std::smatch m;
    D_ASSERT(d, std::regex_match(ok_line, m, combined),
             "access log line not in the standard combined format:\n'%s'\nwhole log:\n%s",
             ok_line.c_str(), text.c_str());

    // A hostile User-Agent cannot add fields to the line.
    D_ASSERT(d, missing_line.find("\"GET /missing.txt HTTP/1.1\" 404 ") != std::string::npos,
             "404 line: '%s'", missing_line.c_str());
    D_ASSERT(d, missing_line.find(R"("x\" 200 1 \"forged")") != std::string::npos,
             "quotes in the User-Agent not escaped: '%s'", missing_line.c_str());
    D_ASSERT(d, bad_line.find("\"GET /bad HTTP/1.1\" 400 ") != std::string::npos,
             "the rejected request is not logged with its 400: '%s'\nlog:\n%s", bad_line.c_str(),
             text.c_str());
    NO_SANITIZER_REPORTS();
}
