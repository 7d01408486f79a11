// test_http_files.cpp - what the real daemon does with files (suite `http`,
// declared in test_http.cpp): byte ranges single and multipart, If-Range,
// 304 and 412 from the validators, 416, the /dir -> /dir/ redirect, index
// files, the autoindex listing with escaped names, traversal attempts,
// symlinks out of the root with and without follow_symlinks, gzip_static,
// and a 1 MiB file fetched intact twice over one keep-alive connection.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

namespace {

using Clock = std::chrono::steady_clock;

// One request with extra header lines ("Name: value\r\n..."), on a fresh
// connection that the request closes.
Response get_with(int port, const std::string& path, const std::string& headers,
                  const std::string& method = "GET")
{
    Response r;
    int fd = connect_tcp(port);
    if (fd < 0) {
        r.error = "connect failed";
        return r;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n" + headers +
                      "Connection: close\r\n\r\n";
    if (!send_all(fd, req)) {
        r.error = "send failed";
        close(fd);
        return r;
    }
    std::string buffer;
    r = read_response(fd, buffer, method == "HEAD", 10s);
    close(fd);
    return r;
}

// 1000 bytes in which every 10-byte line names its own offset: "000000000\n",
// "000000010\n", ...  A wrong slice is visible at a glance.
std::string offsets_file()
{
    std::string s;
    for (int i = 0; i < 100; ++i) s += format("%09d\n", i * 10);
    return s;
}

std::string pseudo_random(size_t n, uint32_t seed)
{
    std::string s(n, '\0');
    uint32_t x = seed;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        s[i] = static_cast<char>(x >> 24);
    }
    return s;
}

// Where two strings first differ, for a message.
std::string first_difference(const std::string& got, const std::string& want)
{
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    if (i == got.size() && i == want.size()) return "identical";
    return format("%zu vs %zu bytes, first difference at offset %zu", got.size(), want.size(), i);
}

struct Part {
    std::string content_type, content_range, data;
};

// Splits a multipart/byteranges body (RFC 9110 14.6, RFC 2046 5.1) into its
// parts; "" on success, else what is wrong.
std::string parse_multipart(const std::string& body, const std::string& boundary,
                            std::vector<Part>& parts)
{
    const std::string delim = "--" + boundary;
    if (body.rfind(delim + "\r\n", 0) != 0) return "the body does not start with '" + delim + "'";
    size_t pos = delim.size() + 2;
    for (;;) {
        size_t head_end = body.find("\r\n\r\n", pos);
        if (head_end == std::string::npos) return "a part without the end of its header";
        Part p;
        for (auto line : lines_of(body.substr(pos, head_end - pos))) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            size_t colon = line.find(':');
            if (colon == std::string::npos) return "part header line without colon: " + line;
            std::string name = line.substr(0, colon), value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (name == "content-type") p.content_type = value;
            if (name == "content-range") p.content_range = value;
        }
        size_t data = head_end + 4;
        size_t next = body.find("\r\n" + delim, data);
        if (next == std::string::npos) return "no delimiter after a part";
        p.data = body.substr(data, next - data);
        parts.push_back(p);
        pos = next + 2 + delim.size();
        if (body.compare(pos, 4, "--\r\n") == 0) {
            if (pos + 4 != body.size()) return "bytes after the close delimiter";
            return "";
        }
        if (body.compare(pos, 2, "\r\n") != 0) return "a delimiter not followed by CRLF";
        pos += 2;
    }
}

}  // namespace

// ---- ranges ------------------------------------------------------------------------

Test(http, range_single_gives_206_with_content_range, .timeout = 20) {
    Daemon d = prepared();
    const std::string file = offsets_file();
    write_file(d.path("www/r.txt"), file);
    start(d);

    struct Case {
        const char* range;
        size_t first, length;
    } cases[] = {
        {"bytes=0-9", 0, 10},          {"bytes=100-149", 100, 50},   {"bytes=990-", 990, 10},
        {"bytes=-25", 975, 25},        {"bytes=995-5000", 995, 5},   {"bytes=-5000", 0, 1000},
        {"bytes=500-500", 500, 1},     {"BYTES=0-0", 0, 1},
    };
    for (const auto& c : cases) {
        Response r = get_with(d.port, "/r.txt", std::string("Range: ") + c.range + "\r\n");
        D_ASSERT(d, r.ok && r.status == 206, "Range: %s: %s '%s', want 206", c.range,
                 r.error.c_str(), r.status_line.c_str());
        std::string want_cr = format("bytes %zu-%zu/1000", c.first, c.first + c.length - 1);
        D_ASSERT(d, r.header("content-range") == want_cr, "Range: %s: Content-Range '%s', want '%s'",
                 c.range, r.header("content-range").c_str(), want_cr.c_str());
        D_ASSERT(d, r.header("content-length") == std::to_string(c.length),
                 "Range: %s: Content-Length '%s'", c.range, r.header("content-length").c_str());
        D_ASSERT(d, r.body == file.substr(c.first, c.length), "Range: %s: wrong bytes '%s'",
                 c.range, r.body.c_str());
        D_ASSERT(d, r.header("content-type") == "text/plain; charset=utf-8",
                 "Range: %s: Content-Type '%s'", c.range, r.header("content-type").c_str());
    }

    // A Range we do not understand is ignored: the whole file, 200.
    for (const char* bad : {"bytes=abc", "bytes=9-5", "items=0-5", "bytes=", "bytes=-"}) {
        Response r = get_with(d.port, "/r.txt", std::string("Range: ") + bad + "\r\n");
        D_ASSERT(d, r.ok && r.status == 200 && r.body == file,
                 "Range: %s: %s '%s', want the whole file with 200", bad, r.error.c_str(),
                 r.status_line.c_str());
    }

    // HEAD has no range semantics: 200 with the full length.
    Response head = get_with(d.port, "/r.txt", "Range: bytes=0-9\r\n", "HEAD");
    D_ASSERT(d, head.ok && head.status == 200 && head.header("content-length") == "1000",
             "HEAD with Range: '%s' Content-Length '%s'", head.status_line.c_str(),
             head.header("content-length").c_str());

    // curl -r
    RunResult c = curl(d, {"-r", "100-199", "-w", "\n%{http_code}", url(d, "/r.txt")});
    D_ASSERT(d, c.status == 0 && c.out == file.substr(100, 100) + "\n206",
             "curl -r 100-199: exit %d '%s' %s", c.status, c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, range_multiple_gives_multipart_byteranges, .timeout = 20) {
    Daemon d = prepared();
    const std::string file = offsets_file();
    write_file(d.path("www/r.txt"), file);
    start(d);

    Response r = get_with(d.port, "/r.txt", "Range: bytes=0-9, 100-149,-20\r\n");
    D_ASSERT(d, r.ok && r.status == 206, "three ranges: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    std::string type = r.header("content-type");
    const std::string prefix = "multipart/byteranges; boundary=";
    D_ASSERT(d, type.rfind(prefix, 0) == 0 && type.size() > prefix.size(),
             "Content-Type '%s', want multipart/byteranges with a boundary", type.c_str());
    D_ASSERT(d, r.header("content-range").empty(),
             "a multipart response must not carry Content-Range itself: '%s'",
             r.header("content-range").c_str());
    D_ASSERT(d, r.header("content-length") == std::to_string(r.body.size()),
             "Content-Length %s but the body is %zu bytes", r.header("content-length").c_str(),
             r.body.size());
    std::string boundary = type.substr(prefix.size());
    std::vector<Part> parts;
    std::string why = parse_multipart(r.body, boundary, parts);
    D_ASSERT(d, why.empty(), "multipart body: %s\n%s", why.c_str(), r.body.c_str());
    struct Want {
        size_t first, length;
    } want[] = {{0, 10}, {100, 50}, {980, 20}};
    D_ASSERT(d, parts.size() == 3, "%zu parts, want 3:\n%s", parts.size(), r.body.c_str());
    for (size_t i = 0; i < 3; ++i) {
        std::string cr = format("bytes %zu-%zu/1000", want[i].first, want[i].first + want[i].length - 1);
        D_ASSERT(d, parts[i].content_range == cr, "part %zu: Content-Range '%s', want '%s'", i,
                 parts[i].content_range.c_str(), cr.c_str());
        D_ASSERT(d, parts[i].content_type == "text/plain; charset=utf-8",
                 "part %zu: Content-Type '%s'", i, parts[i].content_type.c_str());
        D_ASSERT(d, parts[i].data == file.substr(want[i].first, want[i].length),
                 "part %zu: bytes '%s', want '%s'", i, parts[i].data.c_str(),
                 file.substr(want[i].first, want[i].length).c_str());
    }

    // curl asks for two ranges and gets the same structure.
    RunResult c = curl(d, {"-r", "0-4,500-504", "-D", d.path("curl.head"), url(d, "/r.txt")});
    D_ASSERT(d, c.status == 0, "curl -r 0-4,500-504: %s", c.err.c_str());
    std::string head = read_file(d.path("curl.head"));
    size_t at = head.find("boundary=");
    D_ASSERT(d, at != std::string::npos, "curl: no boundary in\n%s", head.c_str());
    std::string b2 = head.substr(at + 9, head.find("\r\n", at) - at - 9);
    std::vector<Part> p2;
    why = parse_multipart(c.out, b2, p2);
    D_ASSERT(d, why.empty() && p2.size() == 2 && p2[0].data == file.substr(0, 5) &&
                    p2[1].data == file.substr(500, 5),
             "curl multipart: %s, %zu parts\n%s", why.c_str(), p2.size(), c.out.c_str());

    // Overlapping and adjacent ranges are coalesced into one part.
    Response merged = get_with(d.port, "/r.txt", "Range: bytes=0-9,5-19,20-29\r\n");
    D_ASSERT(d, merged.ok && merged.status == 206 &&
                    merged.header("content-range") == "bytes 0-29/1000" &&
                    merged.body == file.substr(0, 30),
             "overlapping ranges: '%s' Content-Range '%s' Content-Type '%s'",
             merged.status_line.c_str(), merged.header("content-range").c_str(),
             merged.header("content-type").c_str());
    // An unsatisfiable range among satisfiable ones is dropped.
    Response some = get_with(d.port, "/r.txt", "Range: bytes=0-4,5000-6000\r\n");
    D_ASSERT(d, some.ok && some.status == 206 && some.header("content-range") == "bytes 0-4/1000" &&
                    some.body == file.substr(0, 5),
             "one satisfiable range of two: '%s' Content-Range '%s'", some.status_line.c_str(),
             some.header("content-range").c_str());
    // Ranges asking for more than the file has: the whole file, 200.
    Response greedy = get_with(d.port, "/r.txt", "Range: bytes=0-,0-,0-\r\n");
    D_ASSERT(d, greedy.ok && greedy.status == 200 && greedy.body == file,
             "bytes=0-,0-,0-: '%s' (%zu bytes)", greedy.status_line.c_str(), greedy.body.size());
    NO_SANITIZER_REPORTS();
}

Test(http, unsatisfiable_range_416_with_star_content_range, .timeout = 20) {
    Daemon d = prepared();
    write_file(d.path("www/r.txt"), offsets_file());
    write_file(d.path("www/empty.txt"), "");
    start(d);
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    for (const char* range : {"bytes=1000-1099", "bytes=5000-", "bytes=-0", "bytes=1000-,2000-3000"}) {
        std::string req = std::string("GET /r.txt HTTP/1.1\r\nHost: localhost\r\nRange: ") + range +
                          "\r\n\r\n";
        D_ASSERT(d, send_all(fd, req), "send");
        Response r = read_response(fd, buffer);
        D_ASSERT(d, r.ok && r.status == 416, "Range: %s: %s '%s', want 416", range, r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.status_line == "HTTP/1.1 416 Range Not Satisfiable", "'%s'",
                 r.status_line.c_str());
        D_ASSERT(d, r.header("content-range") == "bytes */1000",
                 "Range: %s: Content-Range '%s', want 'bytes */1000'", range,
                 r.header("content-range").c_str());
        D_ASSERT(d, r.body.find("000000000") == std::string::npos, "416 body holds file bytes");
    }
    // The connection is still usable after the 416s.
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt", false)), "send");
    Response after = read_response(fd, buffer);
    D_ASSERT(d, after.ok && after.status == 200, "GET after 416s: %s", after.error.c_str());
    close(fd);

    RunResult c = curl(d, {"-r", "2000-3000", "-o", "/dev/null", "-w", "%{http_code}", url(d, "/r.txt")});
    D_ASSERT(d, c.out == "416", "curl -r 2000-3000: '%s' %s", c.out.c_str(), c.err.c_str());

    // An empty file: either the whole (empty) file or a 416 naming size 0.
    Response empty = get_with(d.port, "/empty.txt", "Range: bytes=0-10\r\n");
    D_ASSERT(d, empty.ok && ((empty.status == 200 && empty.body.empty()) ||
                             (empty.status == 416 && empty.header("content-range") == "bytes */0")),
             "Range on an empty file: '%s' Content-Range '%s' body '%s'", empty.status_line.c_str(),
             empty.header("content-range").c_str(), empty.body.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, if_range_with_matching_and_stale_validators, .timeout = 20) {
    Daemon d = prepared();
    const std::string file = offsets_file();
    write_file(d.path("www/r.txt"), file);
    struct timespec times[2] = {{1577934245, 0}, {1577934245, 0}};   // 2020-01-02 03:04:05 UTC
    D_ASSERT(d, utimensat(AT_FDCWD, d.path("www/r.txt").c_str(), times, 0) == 0, "utimensat");
    start(d);
    Response plain = get_with(d.port, "/r.txt", "");
    std::string etag = plain.header("etag"), lm = plain.header("last-modified");
    D_ASSERT(d, plain.ok && !etag.empty() && lm == "Thu, 02 Jan 2020 03:04:05 GMT",
             "GET: ETag '%s' Last-Modified '%s'", etag.c_str(), lm.c_str());

    struct Case {
        std::string if_range;
        int status;
        const char* what;
    } cases[] = {
        {etag, 206, "the current ETag"},
        {"\"not-the-etag\"", 200, "another ETag"},
        {"W/" + etag, 200, "a weak ETag (never validates a range)"},
        {lm, 206, "the current Last-Modified"},
        {"Wed, 01 Jan 2020 00:00:00 GMT", 200, "an older date"},
        {"Sat, 01 Jan 2050 00:00:00 GMT", 200, "a later date"},
    };
    for (const auto& c : cases) {
        Response r = get_with(d.port, "/r.txt", "Range: bytes=10-19\r\nIf-Range: " + c.if_range + "\r\n");
        D_ASSERT(d, r.ok && r.status == c.status, "If-Range with %s (%s): '%s', want %d", c.what,
                 c.if_range.c_str(), r.status_line.c_str(), c.status);
        if (c.status == 206)
            D_ASSERT(d, r.body == file.substr(10, 10), "If-Range with %s: body '%s'", c.what,
                     r.body.c_str());
        else
            D_ASSERT(d, r.body == file, "If-Range with %s: not the whole file (%zu bytes)", c.what,
                     r.body.size());
    }
    NO_SANITIZER_REPORTS();
}

// ---- validators: 304 and 412 ---------------------------------------------------

Test(http, not_modified_304_via_if_none_match_and_if_modified_since, .timeout = 20) {
    Daemon d = prepared();
    struct timespec times[2] = {{1577934245, 0}, {1577934245, 0}};   // 2020-01-02 03:04:05 UTC
    D_ASSERT(d, utimensat(AT_FDCWD, d.path("www/x.txt").c_str(), times, 0) == 0, "utimensat");
    start(d);
    Response plain = get_with(d.port, "/x.txt", "");
    std::string etag = plain.header("etag"), lm = plain.header("last-modified");
    D_ASSERT(d, plain.ok && plain.status == 200 && !etag.empty() && !lm.empty(), "GET: %s",
             plain.error.c_str());

    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    struct Case {
        std::string headers;
        int status;
        const char* what;
    } cases[] = {
        {"If-None-Match: " + etag + "\r\n", 304, "If-None-Match with the ETag"},
        {"If-None-Match: \"a\", " + etag + "\r\n", 304, "If-None-Match list holding the ETag"},
        {"If-None-Match: W/" + etag + "\r\n", 304, "If-None-Match with the weak form (weak comparison)"},
        {"If-None-Match: *\r\n", 304, "If-None-Match: *"},
        {"If-None-Match: \"other\"\r\n", 200, "If-None-Match with another ETag"},
        {"If-Modified-Since: " + lm + "\r\n", 304, "If-Modified-Since = Last-Modified"},
        {"If-Modified-Since: Sat, 01 Jan 2050 00:00:00 GMT\r\n", 304, "If-Modified-Since later"},
        {"If-Modified-Since: Wed, 01 Jan 2020 00:00:00 GMT\r\n", 200, "If-Modified-Since earlier"},
        {"If-Modified-Since: Thursday, 02-Jan-20 03:04:05 GMT\r\n", 304, "If-Modified-Since, RFC 850 date"},
        {"If-Modified-Since: Thu Jan  2 03:04:05 2020\r\n", 304, "If-Modified-Since, asctime date"},
        {"If-Modified-Since: yesterday\r\n", 200, "If-Modified-Since not a date"},
        {"If-None-Match: \"other\"\r\nIf-Modified-Since: " + lm + "\r\n", 200,
         "If-None-Match decides over If-Modified-Since"},
    };
    for (const auto& c : cases) {
        D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n" + c.headers + "\r\n"),
                 "send");
        Response r = read_response(fd, buffer);
        D_ASSERT(d, r.ok && r.status == c.status, "%s: %s '%s', want %d", c.what, r.error.c_str(),
                 r.status_line.c_str(), c.status);
        if (c.status == 304) {
            D_ASSERT(d, r.status_line == "HTTP/1.1 304 Not Modified", "'%s'", r.status_line.c_str());
            D_ASSERT(d, r.header("etag") == etag && r.header("last-modified") == lm,
                     "%s: a 304 must repeat the validators (ETag '%s', Last-Modified '%s')", c.what,
                     r.header("etag").c_str(), r.header("last-modified").c_str());
            D_ASSERT(d, r.header("connection") != "close", "%s: the 304 closed the connection", c.what);
        } else {
            D_ASSERT(d, r.body == "hello from preforkd\n", "%s: body '%s'", c.what, r.body.c_str());
        }
    }
    // Had a 304 carried a body, this would not parse.
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt", false)), "send");
    Response last = read_response(fd, buffer);
    D_ASSERT(d, last.ok && last.status == 200 && last.body == "hello from preforkd\n",
             "GET after the 304s: %s '%s' (a 304 with a body?)", last.error.c_str(),
             last.status_line.c_str());
    close(fd);

    // HEAD is conditional too.
    Response head = get_with(d.port, "/x.txt", "If-None-Match: " + etag + "\r\n", "HEAD");
    D_ASSERT(d, head.ok && head.status == 304, "conditional HEAD: '%s'", head.status_line.c_str());

    // curl's own validator handling: --etag-compare and -z.
    std::string etag_file = d.path("etag.txt");
    RunResult save = curl(d, {"--etag-save", etag_file, "-o", "/dev/null", url(d, "/x.txt")});
    D_ASSERT(d, save.status == 0 && read_file(etag_file).find(etag) != std::string::npos,
             "curl --etag-save stored '%s', want %s", read_file(etag_file).c_str(), etag.c_str());
    RunResult cmp = curl(d, {"--etag-compare", etag_file, "-o", "/dev/null", "-w", "%{http_code}",
                             url(d, "/x.txt")});
    D_ASSERT(d, cmp.out == "304", "curl --etag-compare: '%s' %s", cmp.out.c_str(), cmp.err.c_str());
    RunResult z = curl(d, {"-z", lm, "-o", "/dev/null", "-w", "%{http_code}", url(d, "/x.txt")});
    D_ASSERT(d, z.out == "304", "curl -z '%s': '%s' %s", lm.c_str(), z.out.c_str(), z.err.c_str());

    // Once the file changes, the old ETag no longer matches.
    write_file(d.path("www/x.txt"), "changed content, longer than before\n");
    Response changed = get_with(d.port, "/x.txt", "If-None-Match: " + etag + "\r\n");
    D_ASSERT(d, changed.ok && changed.status == 200 && changed.header("etag") != etag &&
                    changed.body == "changed content, longer than before\n",
             "after a change: '%s' ETag '%s' (old %s)", changed.status_line.c_str(),
             changed.header("etag").c_str(), etag.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, precondition_failed_412_via_if_match, .timeout = 20) {
    Daemon d = prepared();
    struct timespec times[2] = {{1577934245, 0}, {1577934245, 0}};   // 2020-01-02 03:04:05 UTC
    D_ASSERT(d, utimensat(AT_FDCWD, d.path("www/x.txt").c_str(), times, 0) == 0, "utimensat");
    start(d);
    std::string etag = get_with(d.port, "/x.txt", "").header("etag");
    D_ASSERT(d, !etag.empty(), "no ETag");
    struct Case {
        std::string headers;
        int status;
        const char* what;
    } cases[] = {
        {"If-Match: \"nope\"\r\n", 412, "If-Match with another ETag"},
        {"If-Match: W/" + etag + "\r\n", 412, "If-Match with a weak ETag (strong comparison)"},
        {"If-Match: " + etag + "\r\n", 200, "If-Match with the ETag"},
        {"If-Match: \"nope\", " + etag + "\r\n", 200, "If-Match list holding the ETag"},
        {"If-Match: *\r\n", 200, "If-Match: *"},
        {"If-Unmodified-Since: Wed, 01 Jan 2020 00:00:00 GMT\r\n", 412, "If-Unmodified-Since earlier"},
        {"If-Unmodified-Since: Thu, 02 Jan 2020 03:04:05 GMT\r\n", 200, "If-Unmodified-Since = mtime"},
        {"If-Match: " + etag + "\r\nIf-Unmodified-Since: Wed, 01 Jan 2020 00:00:00 GMT\r\n", 200,
         "If-Match decides over If-Unmodified-Since"},
        {"If-Match: \"nope\"\r\nIf-None-Match: " + etag + "\r\n", 412,
         "If-Match is checked before If-None-Match"},
        {"If-Match: \"nope\"\r\nRange: bytes=0-4\r\n", 412, "If-Match is checked before Range"},
    };
    for (const auto& c : cases) {
        Response r = get_with(d.port, "/x.txt", c.headers);
        D_ASSERT(d, r.ok && r.status == c.status, "%s: %s '%s', want %d", c.what, r.error.c_str(),
                 r.status_line.c_str(), c.status);
        if (c.status == 412) {
            D_ASSERT(d, r.status_line == "HTTP/1.1 412 Precondition Failed", "'%s'",
                     r.status_line.c_str());
            D_ASSERT(d, r.body.find("hello from preforkd") == std::string::npos,
                     "%s: the 412 carries the file", c.what);
        }
    }
    RunResult c = curl(d, {"-H", "If-Match: \"stale\"", "-o", "/dev/null", "-w", "%{http_code}",
                           url(d, "/x.txt")});
    D_ASSERT(d, c.out == "412", "curl If-Match: '%s' %s", c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- directories -----------------------------------------------------------------

Test(http, directory_redirect_keeps_query_and_serves_index, .timeout = 20) {
    Daemon d = prepared();
    make_dir(d.path("www/dir"));
    write_file(d.path("www/dir/index.html"), "<p>dir index</p>\n");
    make_dir(d.path("www/dir/sub"));
    make_dir(d.path("www/noindex"));
    write_file(d.path("www/noindex/file.txt"), "f\n");
    start(d);

    Response r = http_get(d.port, "/dir?x=1&y=%20z");
    D_ASSERT(d, r.ok && r.status == 301, "GET /dir?x=1&y=%%20z: %s '%s', want 301",
             r.error.c_str(), r.status_line.c_str());
    D_ASSERT(d, r.status_line == "HTTP/1.1 301 Moved Permanently", "'%s'", r.status_line.c_str());
    D_ASSERT(d, r.header("location") == "/dir/?x=1&y=%20z", "Location '%s', want '/dir/?x=1&y=%%20z'",
             r.header("location").c_str());
    Response plain = http_get(d.port, "/dir");
    D_ASSERT(d, plain.ok && plain.status == 301 && plain.header("location") == "/dir/",
             "GET /dir: '%s' Location '%s'", plain.status_line.c_str(),
             plain.header("location").c_str());
    Response deep = http_get(d.port, "/dir/sub");
    D_ASSERT(d, deep.ok && deep.status == 301 && deep.header("location") == "/dir/sub/",
             "GET /dir/sub: '%s' Location '%s'", deep.status_line.c_str(),
             deep.header("location").c_str());

    Response index = http_get(d.port, "/dir/");
    D_ASSERT(d, index.ok && index.status == 200 && index.body == "<p>dir index</p>\n",
             "GET /dir/: %s '%s' body '%s'", index.error.c_str(), index.status_line.c_str(),
             index.body.c_str());
    D_ASSERT(d, index.header("content-type") == "text/html; charset=utf-8",
             "index Content-Type '%s'", index.header("content-type").c_str());

    // Without an index and without autoindex: 403.
    Response forbidden = http_get(d.port, "/noindex/");
    D_ASSERT(d, forbidden.ok && forbidden.status == 403, "GET /noindex/: '%s', want 403",
             forbidden.status_line.c_str());
    D_ASSERT(d, forbidden.status_line == "HTTP/1.1 403 Forbidden", "'%s'",
             forbidden.status_line.c_str());
    D_ASSERT(d, forbidden.body.find("file.txt") == std::string::npos, "the 403 lists the directory");

    // curl -L follows the redirect, query included.
    RunResult c = curl(d, {"-L", "-w", "\n%{url_effective} %{http_code} %{num_redirects}",
                           url(d, "/dir?x=1")});
    D_ASSERT(d, c.status == 0 && c.out == "<p>dir index</p>\n\n" + url(d, "/dir/?x=1") + " 200 1",
             "curl -L /dir?x=1: exit %d '%s' %s", c.status, c.out.c_str(), c.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, autoindex_lists_sorted_and_escapes_names, .timeout = 20) {
    Daemon d = prepared("autoindex = true;");
    const std::string evil = "a<b>&\"q'.txt";
    make_dir(d.path("www/list"));
    write_file(d.path("www/list/" + evil), "evil name\n");
    write_file(d.path("www/list/z.txt"), std::string(1234, 'z'));
    make_dir(d.path("www/list/m"));
    write_file(d.path("www/list/.hidden"), "secret\n");
    make_dir(d.path("www/withindex"));
    write_file(d.path("www/withindex/index.html"), "<p>index wins</p>\n");
    start(d);

    Response r = http_get(d.port, "/list/");
    D_ASSERT(d, r.ok && r.status == 200, "GET /list/: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, r.header("content-type") == "text/html; charset=utf-8", "Content-Type '%s'",
             r.header("content-type").c_str());
    const std::string& html = r.body;
    D_ASSERT(d, html.find("a&lt;b&gt;&amp;&quot;q&#39;.txt") != std::string::npos,
             "the file name is not HTML-escaped in the listing:\n%s", html.c_str());
    D_ASSERT(d, html.find("<b>") == std::string::npos && html.find(evil) == std::string::npos,
             "the raw file name appears in the listing:\n%s", html.c_str());
    size_t href = html.find("href=\"a%3Cb%3E%26%22q%27.txt\"");
    D_ASSERT(d, href != std::string::npos, "the link is not percent-encoded:\n%s", html.c_str());
    D_ASSERT(d, html.find(".hidden") == std::string::npos, "hidden file listed:\n%s", html.c_str());
    size_t m = html.find("href=\"m/\""), z = html.find("href=\"z.txt\"");
    D_ASSERT(d, m != std::string::npos && z != std::string::npos, "m/ or z.txt missing:\n%s",
             html.c_str());
    D_ASSERT(d, href < m && m < z, "entries not sorted by name:\n%s", html.c_str());
    D_ASSERT(d, html.find("1234") != std::string::npos, "the size of z.txt is not shown:\n%s",
             html.c_str());
    D_ASSERT(d, html.find("Index of /list/") != std::string::npos, "no title:\n%s", html.c_str());

    // The escaped link leads to the file.
    Response follow = http_get(d.port, "/list/a%3Cb%3E%26%22q%27.txt");
    D_ASSERT(d, follow.ok && follow.status == 200 && follow.body == "evil name\n",
             "following the listed link: '%s' body '%s'", follow.status_line.c_str(),
             follow.body.c_str());
    // An index file still wins over the listing.
    Response index = http_get(d.port, "/withindex/");
    D_ASSERT(d, index.ok && index.body == "<p>index wins</p>\n", "index with autoindex on: '%s'",
             index.body.c_str());
    // A directory whose name needs escaping gets an escaped title.
    make_dir(d.path("www/<i>"));
    Response dir = http_get(d.port, "/%3Ci%3E/");
    D_ASSERT(d, dir.ok && dir.status == 200 && dir.body.find("<i>") == std::string::npos &&
                    dir.body.find("&lt;i&gt;") != std::string::npos,
             "listing of '/<i>/': '%s'\n%s", dir.status_line.c_str(), dir.body.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- nothing outside the root ------------------------------------------------------

Test(http, traversal_attempts_never_leave_the_root, .timeout = 20) {
    Daemon d = prepared();
    write_file(d.path("secret.txt"), "TOP SECRET\n");   // beside www, not in it
    make_dir(d.path("www/sub"));
    start(d);

    const char* attempts[] = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/.%2e/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/sub\\..\\..\\secret.txt",
        "//etc/passwd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "http://localhost/../secret.txt",
        "/./../secret.txt",
    };
    for (const char* target : attempts) {
        int fd = connect_tcp(d.port);
        D_ASSERT(d, fd >= 0, "connect");
        D_ASSERT(d, send_all(fd, std::string("GET ") + target +
                                     " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
                 "send");
        std::string buffer;
        Response r = read_response(fd, buffer);
        close(fd);
        D_ASSERT(d, r.ok, "GET %s: %s", target, r.error.c_str());
        D_ASSERT(d, r.status >= 400 && r.status < 500, "GET %s: '%s', want a 4xx", target,
                 r.status_line.c_str());
        D_ASSERT(d, r.body.find("TOP SECRET") == std::string::npos &&
                        r.body.find("root:") == std::string::npos,
                 "GET %s leaked a file outside the root:\n%s", target, r.body.c_str());
    }
    // Dot segments that stay inside the root are fine.
    Response inside = http_get(d.port, "/sub/../x.txt");
    D_ASSERT(d, inside.ok && inside.status == 200 && inside.body == "hello from preforkd\n",
             "GET /sub/../x.txt: '%s'", inside.status_line.c_str());
    // curl without its own dot removal.
    RunResult c = curl(d, {"--path-as-is", "-w", "\n%{http_code}", url(d, "/../secret.txt")});
    D_ASSERT(d, c.out.find("TOP SECRET") == std::string::npos && c.out.substr(c.out.size() - 3)[0] == '4',
             "curl --path-as-is /../secret.txt: '%s'", c.out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(http, symlink_out_of_root_403_unless_follow_symlinks, .timeout = 20) {
    auto populate = [](Daemon& d) {
        write_file(d.path("outside.txt"), "OUTSIDE THE ROOT\n");
        make_dir(d.path("elsewhere"));
        write_file(d.path("elsewhere/file.txt"), "ELSEWHERE\n");
        cr_assert(symlink(d.path("outside.txt").c_str(), d.path("www/out-link").c_str()) == 0);
        cr_assert(symlink("../elsewhere", d.path("www/out-dir").c_str()) == 0);
        cr_assert(symlink("x.txt", d.path("www/in-link").c_str()) == 0);
    };
    Daemon d = prepared();
    populate(d);
    start(d);
    Response in = http_get(d.port, "/in-link");
    D_ASSERT(d, in.ok && in.status == 200 && in.body == "hello from preforkd\n",
             "symlink inside the root: '%s' body '%s'", in.status_line.c_str(), in.body.c_str());
    for (const char* path : {"/out-link", "/out-dir/file.txt", "/out-dir/"}) {
        Response r = http_get(d.port, path);
        D_ASSERT(d, r.ok && r.status == 403, "GET %s (symlink out of the root): '%s', want 403",
                 path, r.status_line.c_str());
        D_ASSERT(d, r.body.find("OUTSIDE") == std::string::npos &&
                        r.body.find("ELSEWHERE") == std::string::npos,
                 "GET %s leaked: %s", path, r.body.c_str());
    }

    // Unconfined: with the sandbox (the default) the kernel refuses files
    // outside every root even so (test_sandbox.cpp).
    Daemon f = prepared("follow_symlinks = true;", Options{.extra = "sandbox = false;\n"});
    populate(f);
    start(f);
    Response out = http_get(f.port, "/out-link");
    D_ASSERT(f, out.ok && out.status == 200 && out.body == "OUTSIDE THE ROOT\n",
             "follow_symlinks = true, /out-link: '%s' body '%s'", out.status_line.c_str(),
             out.body.c_str());
    Response dir = http_get(f.port, "/out-dir/file.txt");
    D_ASSERT(f, dir.ok && dir.status == 200 && dir.body == "ELSEWHERE\n",
             "follow_symlinks = true, /out-dir/file.txt: '%s'", dir.status_line.c_str());
    // ".." still cannot climb out.
    Response up = http_get(f.port, "/../outside.txt");
    D_ASSERT(f, up.ok && up.status / 100 == 4 && up.body.find("OUTSIDE") == std::string::npos,
             "follow_symlinks = true, /../outside.txt: '%s'", up.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- gzip_static ------------------------------------------------------------------

Test(http, gzip_static_serves_precompressed_sibling, .timeout = 20) {
    std::string text;
    for (int i = 0; i < 200; ++i) text += format("line %d of a compressible text file\n", i);
    auto populate = [&](Daemon& d) {
        write_file(d.path("www/g.txt"), text);
        RunResult z = run({"/usr/bin/gzip", "-k", "-n", "-9", d.path("www/g.txt")}, d.dir);
        cr_assert(z.status == 0, "gzip -k: %s", z.err.c_str());
    };
    Daemon d = prepared("gzip_static = true;");
    populate(d);
    start(d);
    const std::string gz = read_file(d.path("www/g.txt.gz"));
    D_ASSERT(d, !gz.empty() && gz.size() < text.size(), "g.txt.gz not made");

    struct Case {
        const char* accept;   // nullptr: no Accept-Encoding
        bool gzip;
    } cases[] = {
        {"gzip", true},          {"gzip, deflate, br", true}, {"br;q=1.0, gzip;q=0.5", true},
        {"*", true},             {"x-gzip", true},            {nullptr, false},
        {"identity", false},     {"gzip;q=0", false},         {"deflate, br", false},
        {"*, gzip;q=0", false},  {"GZIP", true},
    };
    std::string plain_etag, gzip_etag;
    for (const auto& c : cases) {
        std::string h = c.accept ? std::string("Accept-Encoding: ") + c.accept + "\r\n" : "";
        Response r = get_with(d.port, "/g.txt", h);
        const char* what = c.accept ? c.accept : "(no Accept-Encoding)";
        D_ASSERT(d, r.ok && r.status == 200, "Accept-Encoding %s: %s '%s'", what, r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.header("vary") == "Accept-Encoding",
                 "Accept-Encoding %s: Vary '%s', want 'Accept-Encoding'", what,
                 r.header("vary").c_str());
        D_ASSERT(d, r.header("content-type") == "text/plain; charset=utf-8",
                 "Accept-Encoding %s: Content-Type '%s' (of g.txt, not of .gz)", what,
                 r.header("content-type").c_str());
        if (c.gzip) {
            D_ASSERT(d, r.header("content-encoding") == "gzip",
                     "Accept-Encoding %s: Content-Encoding '%s', want gzip", what,
                     r.header("content-encoding").c_str());
            D_ASSERT(d, r.body == gz, "Accept-Encoding %s: body is not g.txt.gz (%s)", what,
                     first_difference(r.body, gz).c_str());
            gzip_etag = r.header("etag");
        } else {
            D_ASSERT(d, r.header("content-encoding").empty(),
                     "Accept-Encoding %s: Content-Encoding '%s', want none", what,
                     r.header("content-encoding").c_str());
            D_ASSERT(d, r.body == text, "Accept-Encoding %s: body is not g.txt (%s)", what,
                     first_difference(r.body, text).c_str());
            plain_etag = r.header("etag");
        }
    }
    D_ASSERT(d, !plain_etag.empty() && plain_etag != gzip_etag,
             "the gzip and identity representations share the ETag %s", plain_etag.c_str());

    // A file without a .gz sibling is sent as it is, without Vary.
    Response x = get_with(d.port, "/x.txt", "Accept-Encoding: gzip\r\n");
    D_ASSERT(d, x.ok && x.header("content-encoding").empty() && x.header("vary").empty() &&
                    x.body == "hello from preforkd\n",
             "x.txt (no .gz) with gzip accepted: Content-Encoding '%s' Vary '%s'",
             x.header("content-encoding").c_str(), x.header("vary").c_str());

    // curl --compressed decodes it to the original text.
    RunResult c = curl(d, {"--compressed", "-w", "%{size_download}", "-o", d.path("decoded"),
                           url(d, "/g.txt")});
    D_ASSERT(d, c.status == 0 && read_file(d.path("decoded")) == text &&
                    c.out == std::to_string(gz.size()),
             "curl --compressed: exit %d, %zu bytes on the wire (gz is %zu), decoded %s: %s",
             c.status, std::stoul("0" + c.out), gz.size(),
             first_difference(read_file(d.path("decoded")), text).c_str(), c.err.c_str());

    // gzip_static off (the default): never the .gz, never Content-Encoding.
    Daemon off = prepared();
    populate(off);
    start(off);
    Response r = get_with(off.port, "/g.txt", "Accept-Encoding: gzip\r\n");
    D_ASSERT(off, r.ok && r.status == 200 && r.header("content-encoding").empty() &&
                      r.header("vary").empty() && r.body == text,
             "gzip_static off: Content-Encoding '%s' Vary '%s' body %s",
             r.header("content-encoding").c_str(), r.header("vary").c_str(),
             first_difference(r.body, text).c_str());
    NO_SANITIZER_REPORTS();
}

// ---- a large file -----------------------------------------------------------------

Test(http, one_mib_file_intact_twice_over_keepalive, .timeout = 20) {
    Daemon d = prepared();
    const std::string big = pseudo_random(1u << 20, 12345);
    write_file(d.path("www/big.bin"), big);
    start(d);

    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect");
    std::string buffer;
    for (int round = 1; round <= 2; ++round) {
        D_ASSERT(d, send_all(fd, request("GET", "/big.bin", round == 1)), "send %d", round);
        Response r = read_response(fd, buffer, false, 10s);
        D_ASSERT(d, r.ok && r.status == 200, "GET /big.bin #%d: %s '%s'", round, r.error.c_str(),
                 r.status_line.c_str());
        D_ASSERT(d, r.header("content-length") == "1048576", "#%d: Content-Length '%s'", round,
                 r.header("content-length").c_str());
        D_ASSERT(d, r.body == big, "GET /big.bin #%d: body differs (%s)", round,
                 first_difference(r.body, big).c_str());
        D_ASSERT(d, r.header("content-type") == "application/octet-stream",
                 "Content-Type of .bin '%s'", r.header("content-type").c_str());
    }
    auto [rest, eof] = drain(fd, 3s);
    D_ASSERT(d, eof && rest.empty() && buffer.empty(), "after the second response: closed %d, %zu extra bytes",
             eof, rest.size() + buffer.size());
    close(fd);

    // curl, both on one connection, checked with sha256sum.
    RunResult c = curl(d, {"-w", "%{num_connects}\\n", url(d, "/big.bin"), "-o", d.path("big1"),
                           url(d, "/big.bin"), "-o", d.path("big2")});
    D_ASSERT(d, c.status == 0 && c.out == "1\n0\n", "curl twice: exit %d num_connects '%s' %s",
             c.status, c.out.c_str(), c.err.c_str());
    RunResult sums = run({"/usr/bin/sha256sum", d.path("www/big.bin"), d.path("big1"), d.path("big2")},
                         d.dir);
    auto lines = lines_of(sums.out);
    D_ASSERT(d, sums.status == 0 && lines.size() == 3, "sha256sum: %s", sums.err.c_str());
    std::string want = lines[0].substr(0, 64);
    D_ASSERT(d, lines[1].substr(0, 64) == want && lines[2].substr(0, 64) == want,
             "checksums differ:\n%s", sums.out.c_str());

    // A range from the middle of the big file.
    Response part = get_with(d.port, "/big.bin", "Range: bytes=500000-599999\r\n");
    D_ASSERT(d, part.ok && part.status == 206 && part.body == big.substr(500000, 100000),
             "100 KB range of big.bin: '%s' (%s)", part.status_line.c_str(),
             first_difference(part.body, big.substr(500000, 100000)).c_str());
    NO_SANITIZER_REPORTS();
}
