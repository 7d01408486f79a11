// test_strict.cpp - the strictness that outside conformance suites probe,
// against the real daemon over raw loopback sockets: a chunked body is read
// and checked before the answer (a bad framing is a 400, never a 200 with a
// reset later), chunk extensions follow their grammar, HTTP/1.2-1.9 are
// served as HTTP/1.1, Last-Modified for an mtime of -1, Range positions of
// any length, listings without unreachable names, and a lingering close that
// ends on time against a client that never stops sending.
//
// A refusal is checked the way a client meets it: the status, "Connection:
// close", the connection really closed, and no answer to a valid request
// pipelined behind the bad one.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(http_strict, .init = setup, .fini = cleanup, .timeout = 30);

namespace {

// How long a refused connection may take to be closed by the server.
constexpr Duration kCloseWait = 5s;

const std::string kHost = "Host: localhost\r\n";
const std::string kGetX = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";

Daemon started(const std::string& http_extra = "")
{
    Daemon d = prepared(http_extra);
    start(d);
    return d;
}

// `bytes`, with a valid GET pipelined behind, must get `status` and a close,
// and the GET no answer at all.
void expect_refused(const Daemon& d, const std::string& what, const std::string& bytes,
                    int status, bool head = false)
{
    Exchange x = exchange_raw(d.port, bytes + kGetX, head, kCloseWait, kWait);
    D_ASSERT(d, x.r.ok, "%s (%s): no response: %s", what.c_str(), printable(bytes).c_str(),
             x.r.error.c_str());
    D_ASSERT(d, x.r.status == status, "%s (%s): got '%s', want %d", what.c_str(),
             printable(bytes).c_str(), x.r.status_line.c_str(), status);
    D_ASSERT(d, x.r.header("connection") == "close", "%s: the %d says Connection '%s'",
             what.c_str(), status, x.r.header("connection").c_str());
    D_ASSERT(d, x.closed, "%s: the connection stayed open after the %d", what.c_str(), status);
    D_ASSERT(d, x.after.empty(), "%s: something was answered after the %d: '%s'", what.c_str(),
             status, printable(x.after).c_str());
}

// `bytes`, with a GET of /index.html pipelined behind, gets `status` and
// then the GET its 200, on the same connection.
void expect_served(const Daemon& d, const std::string& what, const std::string& bytes,
                   int status)
{
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0 && send_all(fd, bytes + request("GET", "/index.html", false)),
             "%s: connect/send", what.c_str());
    std::string buffer;
    Response first = read_response(fd, buffer);
    Response second = read_response(fd, buffer);
    close(fd);
    D_ASSERT(d, first.ok && first.status == status, "%s (%s): %s '%s', want %d", what.c_str(),
             printable(bytes).c_str(), first.error.c_str(), first.status_line.c_str(), status);
    D_ASSERT(d, first.header("connection") != "close", "%s: the %d closed the connection",
             what.c_str(), status);
    D_ASSERT(d, second.ok && second.status == 200 && second.body == "<h1>index of www</h1>\n",
             "%s: the request behind it: %s '%s'", what.c_str(), second.error.c_str(),
             second.status_line.c_str());
}

std::string chunked(const std::string& method, const std::string& body)
{
    return method + " /x.txt HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n" + body;
}

}  // namespace

// ---- a chunked body is checked before the answer ---------------------------

Test(http_strict, bad_chunked_framing_is_400_before_any_answer, .timeout = 60) {
    Daemon d = started();
    struct Case {
        const char* what;
        std::string body;
    };
    const Case bad[] = {
        {"chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n"},
        {"no CRLF after the chunk data", "5\r\nhelloXX\r\n0\r\n\r\n"},
        {"chunk data longer than its size", "3\r\nhello\r\n0\r\n\r\n"},
        {"bare LF after the chunk size", "5\nhello\r\n0\r\n\r\n"},
        {"bare LF after the chunk data", "5\r\nhello\n0\r\n\r\n"},
        {"bare LF ending the body", "0\r\n\n"},
        {"chunk size overflows 64 bits", "10000000000000000\r\nhello\r\n0\r\n\r\n"},
    };
    // Whatever the method: one that is served, one refused with 405, one
    // unknown (501), and HEAD.
    for (const char* method : {"GET", "POST", "BREW", "HEAD"})
        for (const Case& c : bad)
            expect_refused(d, std::string(method) + ", " + c.what, chunked(method, c.body), 400,
                           std::string(method) == "HEAD");
    // The same requests with a sound body get what they got before.
    const std::string good = "5\r\nhello\r\n0\r\n\r\n";
    expect_served(d, "GET, chunked", chunked("GET", good), 200);
    expect_served(d, "POST, chunked", chunked("POST", good), 405);
    NO_SANITIZER_REPORTS();
}

// The answer waits for the body: nothing comes back while the body is
// unfinished, and when its framing turns out bad the one answer is the 400.
Test(http_strict, the_answer_waits_for_the_end_of_a_chunked_body, .timeout = 30) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0 && send_all(fd, chunked("GET", "5\r\nhello\r\n")), "connect/send");
    // Only absence is checked here, so a slow machine cannot fail it.
    auto early = recv_some(fd, 500ms);
    D_ASSERT(d, !early, "answered before the body ended: '%s'",
             early ? printable(*early).c_str() : "");
    D_ASSERT(d, send_all(fd, "5\r\nworld!!\r\n" + kGetX), "send the rest");
    std::string buffer;
    Response r = read_response(fd, buffer);
    D_ASSERT(d, r.ok && r.status == 400 && r.header("connection") == "close",
             "bad second chunk: %s '%s'", r.error.c_str(), r.status_line.c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && buffer.empty() && rest.empty(), "after the 400: closed %d, '%s%s'", eof,
             printable(buffer).c_str(), printable(rest).c_str());
    close(fd);

    // A body cut short by the client's end of stream is incomplete: 400.
    fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0 && send_all(fd, chunked("GET", "5\r\nhel")), "connect/send 2");
    D_ASSERT(d, shutdown(fd, SHUT_WR) == 0, "shutdown");
    buffer.clear();
    Response cut = read_response(fd, buffer);
    D_ASSERT(d, cut.ok && cut.status == 400, "body cut short: %s '%s'", cut.error.c_str(),
             cut.status_line.c_str());
    close(fd);
    NO_SANITIZER_REPORTS();
}

// With "Expect: 100-continue" the client waits for us before it sends the
// body, so the body is not waited for: the answer comes at once, and closes.
Test(http_strict, a_chunked_body_behind_100_continue_is_not_waited_for, .timeout = 30) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0 && send_all(fd, "POST /x.txt HTTP/1.1\r\n" + kHost +
                                            "Expect: 100-continue\r\n"
                                            "Transfer-Encoding: chunked\r\n\r\n"),
             "connect/send");
    std::string buffer;
    Response r = read_response(fd, buffer);
    D_ASSERT(d, r.ok && r.status == 405 && r.header("connection") == "close",
             "100-continue without its body: %s '%s' Connection '%s'", r.error.c_str(),
             r.status_line.c_str(), r.header("connection").c_str());
    auto [rest, eof] = drain(fd, kCloseWait);
    D_ASSERT(d, eof && buffer.empty() && rest.empty(), "after the 405: closed %d, '%s%s'", eof,
             printable(buffer).c_str(), printable(rest).c_str());
    close(fd);
    NO_SANITIZER_REPORTS();
}

// A chunked body over max_discard_body is not read to its end: 413 and a
// close, as for a Content-Length over it.
Test(http_strict, chunked_body_over_max_discard_body_is_413, .timeout = 30) {
    Daemon d = started("max_discard_body = 1024;");
    std::string body = "800\r\n" + std::string(0x800, 'b') + "\r\n0\r\n\r\n";
    expect_refused(d, "2 KiB chunk, 1 KiB limit", chunked("GET", body), 413);
    expect_served(d, "512 B chunk, 1 KiB limit",
                  chunked("GET", "200\r\n" + std::string(0x200, 'b') + "\r\n0\r\n\r\n"), 200);
    NO_SANITIZER_REPORTS();
}

// ---- chunk extensions --------------------------------------------------------

Test(http_strict, malformed_chunk_extensions_are_400, .timeout = 30) {
    Daemon d = started();
    const char* bad[] = {
        "5;\r\nhello\r\n0\r\n\r\n",                // no name
        "2 erfrferferf\r\nhi\r\n0\r\n\r\n",        // no semicolon
        "5 \r\nhello\r\n0\r\n\r\n",                // whitespace before the CR
        "5;a=\r\nhello\r\n0\r\n\r\n",              // no value after "="
        "5;a=\"open\r\nhello\r\n0\r\n\r\n",        // unterminated quoted-string
        "5;a b\r\nhello\r\n0\r\n\r\n",             // two words
        "5\r\nhello\r\n0;\r\n\r\n",                // on the last chunk
    };
    for (const char* body : bad) expect_refused(d, "chunk-ext", chunked("POST", body), 400);
    expect_served(d, "valid extensions",
                  chunked("POST", "5 ; a = 1 ;b;c=\"q \\\" d\"\r\nhello\r\n0;last\r\n\r\n"), 405);
    NO_SANITIZER_REPORTS();
}

// ---- versions ------------------------------------------------------------------

Test(http_strict, http_1_2_to_1_9_are_served_as_1_1, .timeout = 30) {
    Daemon d = started();
    for (const char* v : {"HTTP/1.2", "HTTP/1.5", "HTTP/1.9"}) {
        std::string req = std::string("GET /x.txt ") + v + "\r\n" + kHost + "\r\n";
        int fd = connect_tcp(d.port);
        D_ASSERT(d, fd >= 0 && send_all(fd, req + kGetX), "%s: connect/send", v);
        std::string buffer;
        Response r = read_response(fd, buffer);
        Response next = read_response(fd, buffer);
        close(fd);
        D_ASSERT(d, r.ok && r.status_line == "HTTP/1.1 200 OK" && r.body == "hello from preforkd\n",
                 "%s: %s '%s'", v, r.error.c_str(), r.status_line.c_str());
        D_ASSERT(d, r.header("connection") != "close", "%s: closed like 1.0", v);
        D_ASSERT(d, next.ok && next.status == 200, "%s: the next request: %s '%s'", v,
                 next.error.c_str(), next.status_line.c_str());
    }
    // Served as 1.1, so Host is required as in 1.1.
    expect_refused(d, "HTTP/1.2 without Host", "GET /x.txt HTTP/1.2\r\n\r\n", 400);
    // Another major version is still refused.
    for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.1"})
        expect_refused(d, v, std::string("GET /x.txt ") + v + "\r\n" + kHost + "\r\n", 505);
    NO_SANITIZER_REPORTS();
}

// ---- Last-Modified for an mtime of -1 -------------------------------------------

Test(http_strict, an_mtime_of_minus_one_gets_its_last_modified, .timeout = 30) {
    Daemon d = prepared();
    write_file(d.path("www/old.txt"), "old\n");
    struct timespec times[2] = {{0, UTIME_OMIT}, {-1, 0}};
    D_ASSERT(d, utimensat(AT_FDCWD, d.path("www/old.txt").c_str(), times, 0) == 0, "utimensat");
    struct stat st;
    D_ASSERT(d, stat(d.path("www/old.txt").c_str(), &st) == 0 && st.st_mtime == -1,
             "the file system did not keep an mtime of -1");
    start(d);
    // Each request on a fresh connection: some worker answers it first.
    for (int i = 0; i < 4; ++i) {
        Response r = http_get(d.port, "/old.txt");
        D_ASSERT(d, r.ok && r.status == 200, "GET /old.txt: %s '%s'", r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.header("last-modified") == "Wed, 31 Dec 1969 23:59:59 GMT",
                 "Last-Modified '%s'", r.header("last-modified").c_str());
    }
    NO_SANITIZER_REPORTS();
}

// ---- Range positions of any length ------------------------------------------------

Test(http_strict, range_positions_of_any_length, .timeout = 30) {
    Daemon d = prepared();
    write_file(d.path("www/empty.txt"), "");
    start(d);
    auto ranged = [&](const std::string& path, const std::string& range) {
        return exchange_raw(d.port, "GET " + path + " HTTP/1.1\r\n" + kHost + "Range: " + range +
                                    "\r\nConnection: close\r\n\r\n", false, kCloseWait, kWait);
    };
    Exchange zeros = ranged("/x.txt", "bytes=0000000000000000001-2");
    D_ASSERT(d, zeros.r.ok && zeros.r.status == 206 && zeros.r.body == "el" &&
                    zeros.r.header("content-range") == "bytes 1-2/20",
             "leading zeros: %s '%s' Content-Range '%s'", zeros.r.error.c_str(),
             zeros.r.status_line.c_str(), zeros.r.header("content-range").c_str());
    for (const char* far : {"bytes=10000000000000000000-", "bytes=999999999999999999999999-"}) {
        Exchange x = ranged("/x.txt", far);
        D_ASSERT(d, x.r.ok && x.r.status == 416 && x.r.header("content-range") == "bytes */20",
                 "%s: %s '%s'", far, x.r.error.c_str(), x.r.status_line.c_str());
    }
    Exchange empty = ranged("/empty.txt", "bytes=0-0");
    D_ASSERT(d, empty.r.ok && empty.r.status == 416 &&
                    empty.r.header("content-range") == "bytes */0",
             "bytes=0-0 of an empty file: %s '%s'", empty.r.error.c_str(),
             empty.r.status_line.c_str());
    // The connection goes on after a 416, as after any answer.
    expect_served(d, "416 on a kept connection",
                  "GET /empty.txt HTTP/1.1\r\n" + kHost + "Range: bytes=0-0\r\n\r\n", 416);
    NO_SANITIZER_REPORTS();
}

// ---- listings ------------------------------------------------------------------------

Test(http_strict, listing_leaves_out_names_with_control_characters, .timeout = 30) {
    Daemon d = prepared("autoindex = true;");
    make_dir(d.path("www/files"));
    write_file(d.path("www/files/good.txt"), "g");
    write_file(d.path("www/files/bad\x01name.txt"), "b");
    write_file(d.path("www/files/esc\x1b[31m.txt"), "b");
    start(d);
    Response r = http_get(d.port, "/files/");
    D_ASSERT(d, r.ok && r.status == 200, "listing: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, r.body.find("href=\"good.txt\"") != std::string::npos, "%s", r.body.c_str());
    for (const char* part : {"name.txt", "[31m", "%01", "%1B"})
        D_ASSERT(d, r.body.find(part) == std::string::npos, "[%s] in the listing:\n%s", part,
                 printable(r.body, 2000).c_str());
    // And such a name is indeed unreachable: the link would only give 400.
    Response direct = http_get(d.port, "/files/bad%01name.txt");
    D_ASSERT(d, direct.ok && direct.status == 400, "GET of the name: '%s'",
             direct.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- the lingering close ends on time ---------------------------------------------------

// After refusing a body the server reads (and drops) what the client still
// sends for at most 2 s, then closes.  A client that never stops sending
// must not hold the worker beyond that: its sends fail with a reset.
Test(http_strict, lingering_close_ends_against_a_client_that_keeps_sending, .timeout = 60) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0 && send_all(fd, "POST /x.txt HTTP/1.1\r\n" + kHost +
                                            "Content-Length: 100000000\r\n\r\n"),
             "connect/send");
    std::string buffer;
    Response r = read_response(fd, buffer);
    D_ASSERT(d, r.ok && r.status == 413 && r.header("connection") == "close",
             "100 MB body: %s '%s'", r.error.c_str(), r.status_line.c_str());
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    const std::string block(65536, 'x');
    auto deadline = std::chrono::steady_clock::now() + 30s;
    int err = 0;
    while (err == 0 && std::chrono::steady_clock::now() < deadline) {
        ssize_t n = send(fd, block.data(), block.size(), MSG_NOSIGNAL);
        if (n >= 0 || errno == EINTR) continue;
        if (errno != EAGAIN) {
            err = errno;
            break;
        }
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 100);
        if (p.revents & (POLLERR | POLLHUP)) {
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == 0) err = EPIPE;
        }
    }
    close(fd);
    D_ASSERT(d, err == ECONNRESET || err == EPIPE,
             "still sending after 30 s: the lingering close did not end (error %d)", err);
    NO_SANITIZER_REPORTS();
}
