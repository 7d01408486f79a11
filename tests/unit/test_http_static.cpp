// test_http_static.cpp - the static-file responder, as a browser meets it.
//
// Each test gets a fresh temporary tree (made by the suite's .init in the
// test's own process): a document root with files, a directory with an
// index, one without, symlinks pointing in and out, a FIFO, and a secret
// file beside the root that no request may ever reach.  Requests are raw
// text run through the real parser; the checks are what a client sees -
// status line, header fields, and the bytes it would receive.
#include <criterion/criterion.h>

#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

#include "preforkd/http/date.hpp"
#include "preforkd/http/mime.hpp"
#include "preforkd/http/path.hpp"
#include "preforkd/http/request.hpp"
#include "preforkd/http/static_file.hpp"

using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

std::string g_base;   // temporary directory holding root/ and secret.txt
MimeMap g_mime;
Site g_site;

void write_file(const std::string& path, const std::string& text)
{
    std::ofstream(path, std::ios::binary) << text;
}

void make_tree()
{
    const std::string r = g_base + "/root";
    fs::create_directories(r + "/sub");
    fs::create_directories(r + "/list");
    fs::create_directories(r + "/sp ace");
    write_file(g_base + "/secret.txt", "top secret");
    write_file(r + "/a.txt", "hello");
    write_file(r + "/UP.TXT", "upper");
    write_file(r + "/page.html", "<p>hi</p>");
    write_file(r + "/data.bin", "\x01\x02");
    write_file(r + "/noext", "x");
    write_file(r + "/a\\b.txt", "backslash");
    write_file(r + "/sub/index.html", "<h1>sub</h1>");
    write_file(r + "/list/b.txt", "bb");
    write_file(r + "/list/<b>&\"x'.txt", "evil");
    write_file(r + "/list/.hidden", "no");
    fs::create_directories(r + "/list/zdir");
    fs::create_symlink("../../secret.txt", r + "/list/link");
    fs::create_symlink("../secret.txt", r + "/out.txt");
    fs::create_symlink(g_base, r + "/outdir");
    fs::create_symlink("a.txt", r + "/in.txt");
    fs::create_symlink("sub", r + "/insub");
    write_file(r + "/digits.txt", "0123456789");
    write_file(r + "/g.txt", "plain text");
    write_file(r + "/g.txt.gz", "GZIPPED");
    write_file(r + "/sub/index.html.gz", "GZINDEX");
    fs::create_directories(r + "/dir.txt.gz");
    write_file(r + "/dir.txt", "not a gz dir");
    write_file(g_base + "/outside.gz", "OUTSIDE");
    write_file(r + "/leak.txt", "inside");
    fs::create_symlink("../outside.gz", r + "/leak.txt.gz");
    cr_assert_eq(mkfifo((r + "/fifo").c_str(), 0644), 0);
}

void setup()
{
    char tmpl[] = "/tmp/preforkd-http-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    g_base = fs::canonical(tmpl).string();
    make_tree();
    write_file(g_base + "/mime.types", "# comment\n"
                                       "text/plain\t\ttxt text\n"
                                       "text/html html htm # trailing comment\n"
                                       "image/png png\n"
                                       "application/x-ignored\n");
    g_mime = load_mime_types(g_base + "/mime.types");
    g_site.root = g_base + "/root";
    g_site.index = {"index.html"};
    g_site.mime = &g_mime;
}

void teardown()
{
    std::error_code ec;
    if (!g_base.empty()) fs::remove_all(g_base, ec);
}

Request parsed(const std::string& raw)
{
    Request r;
    ParseResult res = parse(raw, Limits{}, r);
    cr_assert(res.state == ParseState::complete, "[%s] does not parse: %d %s", raw.c_str(),
              res.status, res.reason.c_str());
    return r;
}

Response ask(const std::string& target, const std::string& fields = "",
             const std::string& method = "GET", const std::string& version = "HTTP/1.1")
{
    return respond(parsed(method + " " + target + " " + version + "\r\nHost: test\r\n" + fields +
                          "\r\n"),
                   g_site, false);
}

// The value of a header field in a response head, "" when absent.
std::string field(const Response& r, const std::string& name)
{
    std::string key = "\r\n" + name + ": ";
    std::size_t at = r.head.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return r.head.substr(at, r.head.find("\r\n", at) - at);
}

bool has_field(const Response& r, const std::string& name)
{
    return r.head.find("\r\n" + name + ": ") != std::string::npos;
}

std::string file_bytes(const Response& r, off_t offset, std::uint64_t length)
{
    std::string buf(length, '\0');
    ssize_t n = pread(r.file.get(), buf.data(), buf.size(), offset);
    cr_assert_eq(n, static_cast<ssize_t>(buf.size()));
    return buf;
}

// The bytes a client would receive after the head, in the loop's order:
// body, then the single file range, then the multipart parts.
std::string content(const Response& r)
{
    std::string out = r.body;
    if (r.file && r.file_length) out += file_bytes(r, r.file_offset, r.file_length);
    for (const FilePart& p : r.parts) {
        out += p.text;
        if (p.length) out += file_bytes(r, p.offset, p.length);
    }
    return out;
}

std::string status_line(const Response& r) { return r.head.substr(0, r.head.find("\r\n")); }

void expect_status(const std::string& target, int status)
{
    Response r = ask(target);
    cr_expect_eq(r.status, status, "GET %s: %d, expected %d", target.c_str(), r.status, status);
}

}  // namespace

TestSuite(http_static, .init = setup, .fini = teardown, .timeout = 10);

Test(http_static, a_file_is_served_with_its_metadata)
{
    Response r = ask("/a.txt");
    cr_expect_eq(status_line(r), "HTTP/1.1 200 OK");
    cr_expect_eq(field(r, "Content-Type"), "text/plain; charset=utf-8");
    cr_expect_eq(field(r, "Content-Length"), "5");
    cr_expect_eq(field(r, "Server"), "preforkd");
    cr_expect_eq(field(r, "Accept-Ranges"), "bytes");
    cr_expect(parse_http_date(field(r, "Date")).has_value(), "Date: %s", field(r, "Date").c_str());
    struct stat st;
    cr_assert_eq(stat((g_site.root + "/a.txt").c_str(), &st), 0);
    cr_expect_eq(field(r, "Last-Modified"), format_http_date(st.st_mtime));
    char etag[80];
    std::snprintf(etag, sizeof etag, "\"%llx-5-%llx\"", (unsigned long long)st.st_ino,
                  (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec);
    cr_expect_eq(field(r, "ETag"), etag);
    cr_expect_not(has_field(r, "Connection"), "HTTP/1.1 keep-alive needs no Connection field");
    cr_expect_not(r.close);
    cr_expect(r.head.ends_with("\r\n\r\n"));
    cr_expect_eq(content(r), "hello");
    cr_expect_eq(r.body_bytes(), 5u);
}

// The connection loop gives each response it has sent back (recycle()), and
// the next one is built in its storage: nothing of the one before may show,
// and a buffer grown past 16 KiB is not kept.
Test(http_static, a_recycled_response_leaves_nothing_behind)
{
    Response missing = ask("/no-such-file");
    cr_assert_eq(missing.status, 404);
    cr_assert_not(missing.body.empty());
    const char* head_storage = missing.head.data();
    recycle(std::move(missing));

    Response r = ask("/a.txt");
    cr_expect_eq(status_line(r), "HTTP/1.1 200 OK");
    cr_expect_eq(r.head.data(), head_storage, "the head was built in the recycled storage");
    cr_expect_eq(r.head.find("404"), std::string::npos, "%s", r.head.c_str());
    cr_expect_eq(field(r, "Content-Type"), "text/plain; charset=utf-8");
    cr_expect_eq(content(r), "hello");
    cr_expect_eq(r.body_bytes(), 5u);
    recycle(std::move(r));

    Response huge;
    huge.body.assign(64 * 1024, 'x');
    recycle(std::move(huge));
    Response next = ask("/a.txt");
    cr_expect_leq(next.body.capacity(), 16u * 1024, "a 64 KiB body buffer was kept");
    cr_expect_eq(content(next), "hello");
}

// Last-Modified is formatted once per mtime and kept: answers for files with
// other times, and for the same file after its time changed, must not
// reuse it.
Test(http_static, validators_follow_each_file_and_each_change)
{
    std::string a = g_site.root + "/a.txt";
    Response first = ask("/a.txt");
    timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 123}};   // 2001-09-09 01:46:40 UTC
    cr_assert_eq(utimensat(AT_FDCWD, a.c_str(), times, 0), 0);
    Response changed = ask("/a.txt");
    Response other = ask("/page.html");
    Response again = ask("/a.txt");
    cr_expect_eq(field(changed, "Last-Modified"), "Sun, 09 Sep 2001 01:46:40 GMT");
    cr_expect_neq(field(changed, "ETag"), field(first, "ETag"));
    cr_expect(field(changed, "ETag").find("-de0b6b3a764007b\"") != std::string::npos,
              "ETag %s does not end in the new mtime in ns (hex)", field(changed, "ETag").c_str());
    cr_expect_eq(field(other, "Last-Modified").size(), 29u);
    cr_expect_neq(field(other, "Last-Modified"), field(changed, "Last-Modified"));
    cr_expect_eq(field(again, "Last-Modified"), field(changed, "Last-Modified"));
    cr_expect_eq(field(again, "ETag"), field(changed, "ETag"));
}

// -1 is a valid mtime (touch -d @-1): the first answer of a fresh worker
// (each test runs in a process of its own) must carry its date, not the
// empty text of a cache that took -1 for "nothing cached yet".
Test(http_static, an_mtime_of_minus_one_has_a_last_modified)
{
    std::string a = g_site.root + "/a.txt";
    timespec times[2] = {{0, UTIME_OMIT}, {-1, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, a.c_str(), times, 0), 0);
    struct stat st;
    cr_assert_eq(stat(a.c_str(), &st), 0);
    cr_assert_eq(st.st_mtime, -1, "the file system keeps an mtime of -1");
    Response r = ask("/a.txt");
    cr_expect_eq(field(r, "Last-Modified"), "Wed, 31 Dec 1969 23:59:59 GMT");
    cr_expect_neq(field(ask("/page.html"), "Last-Modified"), "Wed, 31 Dec 1969 23:59:59 GMT");
    cr_expect_eq(field(ask("/a.txt"), "Last-Modified"), "Wed, 31 Dec 1969 23:59:59 GMT",
                 "and again after another file's");
}

Test(http_static, content_type_follows_the_extension)
{
    cr_expect_eq(field(ask("/page.html"), "Content-Type"), "text/html; charset=utf-8");
    cr_expect_eq(field(ask("/UP.TXT"), "Content-Type"), "text/plain; charset=utf-8");
    cr_expect_eq(field(ask("/data.bin"), "Content-Type"), "application/octet-stream");
    cr_expect_eq(field(ask("/noext"), "Content-Type"), "application/octet-stream");
}

// content_type() keeps its last answer: a run of different types, each
// asked twice, must never get the one before it.
Test(http_static, content_type_answers_each_type_in_turn)
{
    MimeMap mime = {{"html", "text/html"},
                    {"png", "image/png"},
                    {"svg", "image/svg+xml"},
                    {"csv", "text/csv; charset=iso-8859-1"},
                    {std::string(70, 'x'), "application/x-long"}};
    Site site;
    site.mime = &mime;
    site.default_type = "text/x-unknown";
    for (int round = 0; round < 2; ++round) {
        cr_expect_eq(content_type(site, "a.html"), "text/html; charset=utf-8");
        cr_expect_eq(content_type(site, "a.png"), "image/png");
        cr_expect_eq(content_type(site, "A.SVG"), "image/svg+xml");
        cr_expect_eq(content_type(site, "a.csv"), "text/csv; charset=iso-8859-1",
                     "a type that names its charset keeps it");
        cr_expect_eq(content_type(site, "a." + std::string(70, 'X')), "application/x-long",
                     "an extension longer than the lower-casing buffer");
        cr_expect_eq(content_type(site, "a.nothing"), "text/x-unknown; charset=utf-8");
        cr_expect_eq(content_type(site, ".profile"), "text/x-unknown; charset=utf-8");
    }
    site.default_type = "application/octet-stream";
    cr_expect_eq(content_type(site, "a.nothing"), "application/octet-stream",
                 "a changed default is not answered from the last answer");
}

Test(http_static, server_tokens_add_the_version)
{
    g_site.server_tokens = true;
    cr_expect(field(ask("/a.txt"), "Server").starts_with("preforkd/"));
}

Test(http_static, head_has_the_same_head_and_no_body)
{
    Response get = ask("/a.txt");
    Response head = ask("/a.txt", "", "HEAD");
    auto without_date = [](std::string h) { return h.erase(h.find("Date: "), 37); };
    cr_expect_eq(without_date(head.head), without_date(get.head));
    cr_expect_eq(field(head, "Content-Length"), "5");
    cr_expect_not(head.file.valid());
    cr_expect_eq(head.body_bytes(), 0u);
    Response dir_head = ask("/sub/", "", "HEAD");
    cr_expect_eq(dir_head.status, 200);
    cr_expect_eq(dir_head.body_bytes(), 0u);
}

Test(http_static, normalised_paths_stay_under_the_root)
{
    struct {
        const char* target;
        int status;
    } cases[] = {
        {"/sub/../a.txt", 200},
        {"//a.txt", 200},
        {"/./a.txt", 200},
        {"/sub/./../sub//index.html", 200},
        {"/%61.txt", 200},
        {"/../secret.txt", 404},
        {"/../../../../etc/passwd", 404},
        {"/%2e%2e/secret.txt", 404},
        {"/%2E%2E%2Fsecret.txt", 404},
        {"/sub/..%2f..%2fsecret.txt", 404},
        {"/a%5Cb.txt", 200},            // a backslash is part of a name
        {"/sub%5C..%5Ca.txt", 404},     // and never a separator
        {"/a.txt/", 404},
        {"/missing", 404},
        {"/a.txt%00", 400},
        {"/a%0a.txt", 400},
        {"/%zz", 400},
        {"/a%2", 400},
    };
    for (const auto& c : cases) expect_status(c.target, c.status);
    cr_expect_eq(content(ask("/%2e%2e/a.txt")), "hello", "/.. is / itself");
}

Test(http_static, normalize_path_removes_dot_segments)
{
    struct {
        const char* in;
        const char* out;
    } cases[] = {
        {"", "/"},          {"/", "/"},           {"/a/b", "/a/b"},    {"/a/b/", "/a/b/"},
        {"/a/./b", "/a/b"}, {"/a/../b", "/b"},    {"/..", "/"},        {"/../../x", "/x"},
        {"/a/b/..", "/a/"}, {"/a/b/.", "/a/b/"},  {"//a///b", "/a/b"}, {"/a\\..\\b", "/a\\..\\b"},
        {"/...", "/..."},   {"/a/..b/c", "/a/..b/c"},
    };
    for (const auto& c : cases)
        cr_expect_eq(normalize_path(c.in), c.out, "normalize_path(%s) = %s", c.in,
                     normalize_path(c.in).c_str());
}

Test(http_static, symlinks_are_followed_only_inside_the_root)
{
    expect_status("/in.txt", 200);
    expect_status("/insub/", 200);
    expect_status("/out.txt", 403);
    expect_status("/outdir/secret.txt", 403);
    // What counts is where the name finally leads: back inside is fine.
    expect_status("/outdir/root/a.txt", 200);
    cr_expect_eq(content(ask("/in.txt")), "hello");
}

Test(http_static, a_fifo_is_refused_without_blocking)
{
    // The suite timeout catches an open() that would wait for a writer.
    expect_status("/fifo", 403);
}

namespace {

// As root nothing is unreadable, so the request is made by a child that
// has become nobody; the tree is world-searchable for it.
int status_as_nobody(const std::string& target)
{
    cr_assert_eq(chmod(g_base.c_str(), 0755), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(255);
        _exit(ask(target).status % 256);   // 403 -> 147
    }
    int wstatus = 0;
    cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
    cr_assert(WIFEXITED(wstatus));
    cr_assert_neq(WEXITSTATUS(wstatus), 255, "could not become nobody");
    return WEXITSTATUS(wstatus);
}

}  // namespace

Test(http_static, unreadable_file_is_forbidden)
{
    cr_assert_eq(chmod((g_site.root + "/a.txt").c_str(), 0), 0);
    cr_assert_eq(chmod((g_site.root + "/list").c_str(), 0), 0);
    if (geteuid() != 0) {
        expect_status("/a.txt", 403);
        expect_status("/list/b.txt", 403);
        return;
    }
    cr_expect_eq(status_as_nobody("/a.txt"), 403 % 256);
    cr_expect_eq(status_as_nobody("/list/b.txt"), 403 % 256);
    cr_expect_eq(status_as_nobody("/noext"), 200, "the rest stays readable");
}

Test(http_static, directory_without_slash_is_redirected)
{
    Response r = ask("/sub?x=1&y=%41");
    cr_expect_eq(status_line(r), "HTTP/1.1 301 Moved Permanently");
    cr_expect_eq(field(r, "Location"), "/sub/?x=1&y=%41");
    cr_expect_not(r.close);
    cr_expect_eq(field(ask("/sp%20ace"), "Location"), "/sp%20ace/");
    cr_expect_eq(field(ask("//sub/.."), "Location"), "", "/sub/.. is / itself, no redirect");
}

Test(http_static, index_file_is_served_for_a_directory)
{
    Response r = ask("/sub/");
    cr_expect_eq(r.status, 200);
    cr_expect_eq(field(r, "Content-Type"), "text/html; charset=utf-8");
    cr_expect_eq(content(r), "<h1>sub</h1>");
}

Test(http_static, directory_without_index_is_forbidden_without_autoindex)
{
    expect_status("/list/", 403);
}

Test(http_static, autoindex_lists_escaped_sorted_names)
{
    g_site.autoindex = true;
    Response r = ask("/list/");
    cr_expect_eq(r.status, 200);
    cr_expect_eq(field(r, "Content-Type"), "text/html; charset=utf-8");
    cr_expect_eq(field(r, "Content-Length"), std::to_string(r.body.size()));
    const std::string& html = r.body;
    cr_expect(html.find("Index of /list/") != std::string::npos);
    cr_expect(html.find("&lt;b&gt;&amp;&quot;x&#39;.txt") != std::string::npos, "%s", html.c_str());
    cr_expect(html.find("href=\"%3Cb%3E%26%22x%27.txt\"") != std::string::npos, "%s",
              html.c_str());
    cr_expect(html.find("<b>") == std::string::npos, "a name is never raw HTML");
    cr_expect(html.find(".hidden") == std::string::npos);
    cr_expect(html.find("href=\"zdir/\"") != std::string::npos);
    cr_expect(html.find("href=\"../\"") != std::string::npos);
    std::size_t evil = html.find("%3Cb%3E"), b = html.find("href=\"b.txt\""),
                zdir = html.find("href=\"zdir/\"");
    cr_expect(evil < b && b < zdir, "sorted by name");
    cr_expect(html.find(">2<") != std::string::npos, "size of b.txt");
    cr_expect(html.find("href=\"link\"") != std::string::npos);
    cr_expect(html.find(">10<") == std::string::npos, "nothing about the file outside the root");
}

// A name with a control character cannot be requested (percent_decode
// refuses it), so it is left out of the listing rather than linked to a 400.
Test(http_static, autoindex_leaves_out_names_with_control_characters)
{
    g_site.autoindex = true;
    const std::string dir = g_site.root + "/list/";
    for (const char* name : {"tab\there.txt", "nl\nhere.txt", "esc\x1b[31m.txt", "del\x7f.txt"})
        write_file(dir + name, "x");
    write_file(dir + "plain.txt", "x");
    Response r = ask("/list/");
    cr_expect_eq(r.status, 200);
    const std::string& html = r.body;
    for (const char* part : {"here.txt", "[31m", "del", "%09", "%0A", "%1B", "%7F"})
        cr_expect(html.find(part) == std::string::npos, "[%s] is in the listing:\n%s", part,
                  html.c_str());
    for (unsigned char c : html)
        cr_expect(c >= 0x20 || c == '\n', "raw control byte 0x%02x in the listing", c);
    cr_expect(html.find("href=\"plain.txt\"") != std::string::npos, "%s", html.c_str());
    cr_expect(html.find("href=\"b.txt\"") != std::string::npos);
}

Test(http_static, etag_match_gives_304)
{
    Response full = ask("/a.txt");
    std::string etag = field(full, "ETag");
    const std::string conditions[] = {
        "If-None-Match: " + etag + "\r\n",
        "If-None-Match: \"other\", " + etag + "\r\n",
        "If-None-Match: W/" + etag + "\r\n",
        "If-None-Match: *\r\n",
        "If-Modified-Since: " + field(full, "Last-Modified") + "\r\n",
        "If-Modified-Since: " + format_http_date(time(nullptr) + 3600) + "\r\n",
    };
    for (const std::string& c : conditions) {
        Response r = ask("/a.txt", c);
        cr_expect_eq(status_line(r), "HTTP/1.1 304 Not Modified", "%s", c.c_str());
        cr_expect_eq(field(r, "ETag"), etag);
        cr_expect_eq(field(r, "Last-Modified"), field(full, "Last-Modified"));
        cr_expect_not(has_field(r, "Content-Length"));
        cr_expect_eq(r.body_bytes(), 0u);
        cr_expect_not(r.file.valid());
    }
}

Test(http_static, stale_conditions_give_the_file)
{
    Response full = ask("/a.txt");
    const std::string conditions[] = {
        "If-None-Match: \"other\"\r\n",
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
        "If-Modified-Since: yesterday\r\n",
        // If-None-Match decides alone, even when the date would match.
        "If-None-Match: \"other\"\r\nIf-Modified-Since: " + field(full, "Last-Modified") + "\r\n",
    };
    for (const std::string& c : conditions) {
        Response r = ask("/a.txt", c);
        cr_expect_eq(r.status, 200, "%s", c.c_str());
        cr_expect_eq(content(r), "hello");
    }
}

Test(http_static, single_byte_ranges)
{
    Response r = ask("/a.txt", "Range: bytes=1-3\r\n");
    cr_expect_eq(status_line(r), "HTTP/1.1 206 Partial Content");
    cr_expect_eq(field(r, "Content-Range"), "bytes 1-3/5");
    cr_expect_eq(field(r, "Content-Length"), "3");
    cr_expect_eq(content(r), "ell");
    cr_expect_eq(content(ask("/a.txt", "Range: bytes=-2\r\n")), "lo");
    cr_expect_eq(content(ask("/a.txt", "Range: bytes=3-\r\n")), "lo");
    cr_expect_eq(content(ask("/a.txt", "Range: bytes=0-99\r\n")), "hello");
    Response bad = ask("/a.txt", "Range: bytes=5-\r\n");
    cr_expect_eq(bad.status, 416);
    cr_expect_eq(field(bad, "Content-Range"), "bytes */5");
    const char* ignored[] = {"Range: lines=1-2\r\n",
                             "Range: bytes=3-1\r\n", "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n"};
    for (const char* f : ignored) {
        Response all = ask("/a.txt", f);
        cr_expect_eq(all.status, 200, "%s", f);
        cr_expect_eq(content(all), "hello", "%s", f);
    }
    std::string etag = field(r, "ETag");
    cr_expect_eq(ask("/a.txt", "Range: bytes=0-0\r\nIf-Range: " + etag + "\r\n").status, 206);
    cr_expect_eq(ask("/a.txt", "Range: bytes=0-0\r\n", "HEAD").status, 200);
}

Test(http_static, methods_other_than_get_and_head)
{
    Response options = ask("/a.txt", "", "OPTIONS");
    cr_expect_eq(options.status, 200);
    cr_expect_eq(field(options, "Allow"), "GET, HEAD, OPTIONS");
    cr_expect_eq(field(options, "Content-Length"), "0");
    cr_expect_eq(ask("*", "", "OPTIONS").status, 200);
    for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "TRACE"}) {
        Response r = ask("/a.txt", "", m);
        cr_expect_eq(r.status, 405, "%s", m);
        cr_expect_eq(field(r, "Allow"), "GET, HEAD, OPTIONS", "%s", m);
    }
    Response brew = ask("/a.txt", "", "BREW");
    cr_expect_eq(status_line(brew), "HTTP/1.1 501 Not Implemented");
    cr_expect(brew.close);
    cr_expect_eq(ask("/a.txt", "", "get").status, 501, "methods are case-sensitive");
}

Test(http_static, a_request_with_a_body_closes_the_connection)
{
    Response post = ask("/a.txt", "Content-Length: 4\r\n", "POST");
    cr_expect_eq(post.status, 405);
    cr_expect(post.close);
    cr_expect_eq(field(post, "Connection"), "close");
    Response chunked = ask("/a.txt", "Transfer-Encoding: chunked\r\n", "POST");
    cr_expect(chunked.close);
    cr_expect_not(ask("/a.txt", "Content-Length: 0\r\n").close);
}

Test(http_static, connection_handling_by_version)
{
    Response old = ask("/a.txt", "", "GET", "HTTP/1.0");
    cr_expect(old.close);
    cr_expect_eq(field(old, "Connection"), "close");
    Response kept = ask("/a.txt", "Connection: keep-alive\r\n", "GET", "HTTP/1.0");
    cr_expect_not(kept.close);
    cr_expect_eq(field(kept, "Connection"), "keep-alive");
    Response forced = respond(parsed("GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n"), g_site, true);
    cr_expect(forced.close);
    cr_expect_eq(field(forced, "Connection"), "close");
    Response asked = ask("/a.txt", "Connection: close\r\n");
    cr_expect(asked.close);
    Response newer = ask("/a.txt", "", "GET", "HTTP/1.2");
    cr_expect_eq(status_line(newer), "HTTP/1.1 200 OK", "HTTP/1.2 is answered as 1.1");
    cr_expect_not(newer.close, "and keeps the connection as 1.1 does");
}

Test(http_static, error_pages_are_small_html_that_echo_nothing)
{
    Response r = ask("/%3Cscript%3Ealert(1)%3C/script%3E");
    cr_expect_eq(r.status, 404);
    cr_expect_eq(field(r, "Content-Type"), "text/html; charset=utf-8");
    cr_expect(r.body.find("404 Not Found") != std::string::npos);
    cr_expect(r.body.find("script") == std::string::npos);
    cr_expect_eq(field(r, "Content-Length"), std::to_string(r.body.size()));

    Response e = error_response(431, g_site);
    cr_expect_eq(status_line(e), "HTTP/1.1 431 Request Header Fields Too Large");
    cr_expect_eq(field(e, "Connection"), "close");
    cr_expect(e.close);
    cr_expect(e.body.find("431 Request Header Fields Too Large") != std::string::npos);
    Response h = error_response(408, g_site, true);
    cr_expect_eq(h.body_bytes(), 0u);
    std::size_t page = error_response(408, g_site).body.size();
    cr_expect_eq(field(h, "Content-Length"), std::to_string(page),
                 "HEAD keeps the length of the page it does not send");
}

Test(http_static, reason_phrases)
{
    cr_expect_str_eq(reason_phrase(200), "OK");
    cr_expect_str_eq(reason_phrase(304), "Not Modified");
    cr_expect_str_eq(reason_phrase(404), "Not Found");
    cr_expect_str_eq(reason_phrase(505), "HTTP Version Not Supported");
    cr_expect_str_eq(reason_phrase(299), "Unknown");
}

Test(http_static, http_dates)
{
    cr_expect_eq(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_expect_eq(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_expect_eq(format_http_date(951786123), "Tue, 29 Feb 2000 01:02:03 GMT");
    cr_expect_eq(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    const char* same[] = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                          "Sun Nov  6 08:49:37 1994"};
    for (const char* d : same) {
        std::optional<time_t> t = parse_http_date(d);
        cr_expect(t.has_value() && *t == 784111777, "%s", d);
    }
    const char* bad[] = {"", "Sun, 06 Nov 1994 08:49:37", "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:00:00 GMT",
                         "sun, 06 nov 1994 08:49:37 gmt", "Sun, 06 Nov 1994 08:49:37 GMT x"};
    for (const char* d : bad) cr_expect_not(parse_http_date(d).has_value(), "%s", d);
}

Test(http_static, mime_types_file)
{
    cr_expect_eq(g_mime.at("txt"), "text/plain");
    cr_expect_eq(g_mime.at("text"), "text/plain");
    cr_expect_eq(g_mime.at("htm"), "text/html");
    cr_expect_eq(g_mime.count("trailing"), 0u, "comments are not extensions");
    cr_expect_eq(g_mime.count("comment"), 0u);
    try {
        load_mime_types(g_base + "/missing.types");
        cr_expect_fail("a missing file must throw");
    } catch (const std::system_error& e) {
        std::string what = e.what();
        cr_expect(what.find("open") != std::string::npos, "%s", e.what());
        cr_expect(what.find("missing.types") != std::string::npos, "%s", e.what());
    }
}

// ---- multiple ranges ------------------------------------------------------

namespace {

// The boundary from "multipart/byteranges; boundary=B".
std::string boundary_of(const Response& r)
{
    std::string type = field(r, "Content-Type");
    std::string prefix = "multipart/byteranges; boundary=";
    cr_assert(type.starts_with(prefix), "Content-Type: %s", type.c_str());
    return type.substr(prefix.size());
}

}  // namespace

Test(http_static, multiple_ranges_give_multipart_byteranges)
{
    Response r = ask("/digits.txt", "Range: bytes=0-1, 5-6\r\n");
    cr_expect_eq(status_line(r), "HTTP/1.1 206 Partial Content");
    std::string b = boundary_of(r);
    cr_expect_geq(b.size(), 16u);
    std::string expected = "--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\n" +
                           "Content-Range: bytes 0-1/10\r\n\r\n01\r\n--" + b +
                           "\r\nContent-Type: text/plain; charset=utf-8\r\n" +
                           "Content-Range: bytes 5-6/10\r\n\r\n56\r\n--" + b + "--\r\n";
    cr_expect_eq(content(r), expected, "%s", content(r).c_str());
    cr_expect_eq(field(r, "Content-Length"), std::to_string(expected.size()));
    cr_expect_eq(r.body_bytes(), expected.size());
    cr_expect_not(has_field(r, "Content-Range"), "only the parts carry Content-Range");
    cr_expect(has_field(r, "ETag"));
    cr_expect_neq(boundary_of(ask("/digits.txt", "Range: bytes=0-1,5-6\r\n")), b,
                  "a boundary is not predictable");
}

Test(http_static, ranges_are_coalesced_or_refused_like_nginx)
{
    struct {
        const char* range;
        int status;
        const char* content_range;   // single-part 206 only
        int parts;                   // multipart 206 only
    } cases[] = {
        {"bytes=0-2,1-4", 206, "bytes 0-4/10", 0},     // overlapping: one part
        {"bytes=0-2,3-4", 206, "bytes 0-4/10", 0},     // adjacent: one part
        {"bytes=-3,7-", 206, "bytes 7-9/10", 0},       // the same bytes twice, within size
        {"bytes=5-6,0-1", 206, "", 2},                 // parts go out in ascending order
        {"bytes=0-0,2-2,4-4", 206, "", 3},
        {"bytes=0-0,20-", 206, "bytes 0-0/10", 0},     // the unsatisfiable one is dropped
        {"bytes=20-,30-", 416, "", 0},                 // none satisfiable
        {"bytes=0-,0-", 200, "", 0},                   // more bytes than the file: whole
        {"bytes=0-5,2-8", 200, "", 0},
        {"bytes=0-1,x", 200, "", 0},                   // one bad spec spoils the field
        {"bytes=0-1,,2-3", 206, "bytes 0-3/10", 0},    // empty list elements are allowed
        {"bytes=0-0,2-2,4-4,6-6", 200, "", 0},         // over max_ranges (3 here)
        {"bytes=0000000000000000001-2", 206, "bytes 1-2/10", 0},   // any number of digits
        {"bytes=10000000000000000000-", 416, "bytes */10", 0},     // beyond any file
        {"bytes=99999999999999999999999-", 416, "bytes */10", 0},  // saturated, still beyond
        {"bytes=8-99999999999999999999999", 206, "bytes 8-9/10", 0},
    };
    g_site.max_ranges = 3;
    for (const auto& c : cases) {
        Response r = ask("/digits.txt", std::string("Range: ") + c.range + "\r\n");
        cr_expect_eq(r.status, c.status, "%s: %d", c.range, r.status);
        if (c.status == 200) cr_expect_eq(content(r), "0123456789", "%s", c.range);
        if (*c.content_range)
            cr_expect_eq(field(r, "Content-Range"), c.content_range, "%s", c.range);
        if (c.parts) cr_expect_eq(r.parts.size(), std::size_t(c.parts) + 1, "%s", c.range);
    }
    Response asc = ask("/digits.txt", "Range: bytes=5-6,0-1\r\n");
    cr_expect_lt(content(asc).find("bytes 0-1/10"), content(asc).find("bytes 5-6/10"));
    g_site.max_ranges = 0;
    cr_expect_eq(ask("/digits.txt", "Range: bytes=0-0\r\n").status, 200, "max_ranges 0: off");
}

Test(http_static, ranges_of_an_empty_file)
{
    write_file(g_site.root + "/empty.txt", "");
    for (const char* range : {"bytes=0-0", "bytes=0-", "bytes=-0"}) {
        Response r = ask("/empty.txt", std::string("Range: ") + range + "\r\n");
        cr_expect_eq(r.status, 416, "%s of an empty file: %d", range, r.status);
        cr_expect_eq(field(r, "Content-Range"), "bytes */0", "%s", range);
    }
    // A suffix is satisfiable, and selects the whole (empty) file.
    Response suffix = ask("/empty.txt", "Range: bytes=-5\r\n");
    cr_expect_eq(suffix.status, 200);
    cr_expect_eq(field(suffix, "Content-Length"), "0");
    cr_expect_eq(ask("/empty.txt").status, 200, "no Range: 200");
}

Test(http_static, head_ignores_multiple_ranges)
{
    Response r = ask("/digits.txt", "Range: bytes=0-1,5-6\r\n", "HEAD");
    cr_expect_eq(r.status, 200);
    cr_expect_eq(field(r, "Content-Length"), "10");
    cr_expect_eq(r.body_bytes(), 0u);
    cr_expect(r.parts.empty());
}

// ---- preconditions -----------------------------------------------------------

Test(http_static, preconditions_in_rfc_9110_order)
{
    Response full = ask("/a.txt");
    std::string etag = field(full, "ETag"), lm = field(full, "Last-Modified");
    std::string past = "Sun, 06 Nov 1994 08:49:37 GMT";
    std::string future = format_http_date(time(nullptr) + 3600);
    struct {
        std::string fields;
        int status;
    } cases[] = {
        {"If-Match: " + etag + "\r\n", 200},
        {"If-Match: \"x\", " + etag + "\r\n", 200},
        {"If-Match: \"x\"\r\nIf-Match: " + etag + "\r\n", 200},   // lines form one list
        {"If-Match: *\r\n", 200},
        {"If-Match: \"other\"\r\n", 412},
        {"If-Match: W/" + etag + "\r\n", 412},                    // strong comparison
        {"If-Unmodified-Since: " + past + "\r\n", 412},
        {"If-Unmodified-Since: " + lm + "\r\n", 200},
        {"If-Unmodified-Since: " + future + "\r\n", 200},
        {"If-Unmodified-Since: not a date\r\n", 200},             // ignored
        // If-Match decides alone, even when the date would fail.
        {"If-Match: " + etag + "\r\nIf-Unmodified-Since: " + past + "\r\n", 200},
        // Steps 1-2 come before 3-4: 412 beats 304.
        {"If-Match: \"other\"\r\nIf-None-Match: " + etag + "\r\n", 412},
        {"If-Unmodified-Since: " + past + "\r\nIf-Modified-Since: " + future + "\r\n", 412},
        {"If-Match: " + etag + "\r\nIf-None-Match: " + etag + "\r\n", 304},
        {"If-Unmodified-Since: " + future + "\r\nIf-None-Match: *\r\n", 304},
        // And preconditions come before the Range.
        {"If-Match: \"other\"\r\nRange: bytes=0-0\r\n", 412},
        {"If-None-Match: " + etag + "\r\nRange: bytes=0-0\r\n", 304},
        {"If-Match: " + etag + "\r\nRange: bytes=0-0\r\n", 206},
    };
    for (const auto& c : cases) {
        Response r = ask("/a.txt", c.fields);
        cr_expect_eq(r.status, c.status, "%s-> %d", c.fields.c_str(), r.status);
    }
    Response failed = ask("/a.txt", "If-Match: \"other\"\r\n");
    cr_expect_eq(status_line(failed), "HTTP/1.1 412 Precondition Failed");
    cr_expect_not(failed.close, "a 412 is an ordinary answer");
    cr_expect_eq(ask("/missing", "If-Match: *\r\n").status, 404, "* needs a representation");
}

// ---- gzip_static ---------------------------------------------------------------

Test(http_static, gzip_static_serves_the_gz_sibling)
{
    g_site.gzip_static = true;
    Response plain = ask("/g.txt");
    Response gz = ask("/g.txt", "Accept-Encoding: br, gzip\r\n");
    cr_expect_eq(gz.status, 200);
    cr_expect_eq(content(gz), "GZIPPED");
    cr_expect_eq(field(gz, "Content-Encoding"), "gzip");
    cr_expect_eq(field(gz, "Content-Type"), "text/plain; charset=utf-8", "type of the original");
    cr_expect_eq(field(gz, "Content-Length"), "7");
    cr_expect_eq(field(gz, "Vary"), "Accept-Encoding");
    cr_expect_eq(content(plain), "plain text");
    cr_expect_not(has_field(plain, "Content-Encoding"));
    cr_expect_eq(field(plain, "Vary"), "Accept-Encoding", "the identity answer varies too");
    cr_expect_neq(field(gz, "ETag"), field(plain, "ETag"));
    cr_expect(field(gz, "ETag").ends_with("-gz\""), "ETag %s", field(gz, "ETag").c_str());
    cr_expect(field(plain, "ETag").starts_with("\"") && field(plain, "ETag").ends_with("\"") &&
                  field(plain, "ETag").find("-gz") == std::string::npos,
              "ETag %s", field(plain, "ETag").c_str());

    Response again = ask("/g.txt", "Accept-Encoding: gzip\r\nIf-None-Match: " + field(gz, "ETag") +
                                       "\r\n");
    cr_expect_eq(again.status, 304);
    cr_expect_eq(field(again, "Vary"), "Accept-Encoding");
    cr_expect_eq(ask("/g.txt", "If-None-Match: " + field(gz, "ETag") + "\r\n").status, 200,
                 "the gzip validator does not validate the identity file");
    Response part = ask("/g.txt", "Accept-Encoding: gzip\r\nRange: bytes=0-1\r\n");
    cr_expect_eq(field(part, "Content-Range"), "bytes 0-1/7", "ranges are of the gzip bytes");
}

Test(http_static, gzip_static_follows_accept_encoding)
{
    g_site.gzip_static = true;
    struct {
        const char* accept;
        bool gzip;
    } cases[] = {
        {"", false},
        {"Accept-Encoding: gzip\r\n", true},
        {"Accept-Encoding: GZIP;q=0.5\r\n", true},
        {"Accept-Encoding: x-gzip\r\n", true},
        {"Accept-Encoding: deflate, br\r\n", false},
        {"Accept-Encoding: gzip;q=0\r\n", false},
        {"Accept-Encoding: gzip; q=0.000\r\n", false},
        {"Accept-Encoding: *\r\n", true},
        {"Accept-Encoding: *, gzip;q=0\r\n", false},
        {"Accept-Encoding: identity\r\nAccept-Encoding: gzip\r\n", true},
    };
    for (const auto& c : cases) {
        Response r = ask("/g.txt", c.accept);
        cr_expect_eq(field(r, "Content-Encoding") == "gzip", c.gzip, "[%s]", c.accept);
    }
}

Test(http_static, gzip_static_edge_cases)
{
    const std::string gzip = "Accept-Encoding: gzip\r\n";
    cr_expect_eq(content(ask("/g.txt", gzip)), "plain text", "off by default");
    g_site.gzip_static = true;
    Response index = ask("/sub/", gzip);
    cr_expect_eq(content(index), "GZINDEX", "index files have siblings too");
    cr_expect_eq(field(index, "Content-Type"), "text/html; charset=utf-8");
    Response none = ask("/a.txt", gzip);
    cr_expect_eq(content(none), "hello");
    cr_expect_not(has_field(none, "Vary"), "no sibling, nothing varies");
    cr_expect_eq(content(ask("/dir.txt", gzip)), "not a gz dir", "a directory is no sibling");
    cr_expect_eq(content(ask("/leak.txt", gzip)), "inside", "a sibling outside the root neither");
    Response head = ask("/g.txt", gzip, "HEAD");
    cr_expect_eq(field(head, "Content-Length"), "7");
    cr_expect_eq(head.body_bytes(), 0u);
}

// ---- follow_symlinks --------------------------------------------------------------

Test(http_static, follow_symlinks_allows_links_out_of_the_root)
{
    g_site.follow_symlinks = true;
    cr_expect_eq(content(ask("/out.txt")), "top secret");
    expect_status("/outdir/secret.txt", 200);
    expect_status("/in.txt", 200);
    // Only symlinks may lead out; dot segments still cannot.
    expect_status("/../secret.txt", 404);
    expect_status("/%2e%2e/secret.txt", 404);
    expect_status("/sub/..%2f..%2fsecret.txt", 404);
}

// ---- methods and request bodies ----------------------------------------------

namespace {

Response ask_discarding(const std::string& raw)
{
    return respond(parsed(raw), g_site, false, UnreadBody::discard);
}

}  // namespace

Test(http_static, bodies_the_loop_discards_keep_the_connection)
{
    struct {
        const char* what;
        std::string raw;
        int status;
        bool close;
    } cases[] = {
        {"POST with Content-Length",
         "POST /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n", 405, false},
        {"PUT chunked", "PUT /a.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
         405, false},
        {"GET with a body", "GET /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n", 200,
         false},
        {"OPTIONS with a body", "OPTIONS * HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n", 200,
         false},
        {"Expect: 100-continue",
         "POST /a.txt HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n",
         405, true},
        {"Expect without a body", "GET /a.txt HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
         200, false},
        {"unknown method", "BREW /pot HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n", 501, true},
    };
    for (const auto& c : cases) {
        Response r = ask_discarding(c.raw);
        cr_expect_eq(r.status, c.status, "%s: %d", c.what, r.status);
        cr_expect_eq(r.close, c.close, "%s", c.what);
    }
}

Test(http_static, every_method_gets_its_answer)
{
    struct {
        const char* method;
        const char* target;
        int status;
        const char* allow;
    } cases[] = {
        {"GET", "/a.txt", 200, ""},         {"HEAD", "/a.txt", 200, ""},
        {"OPTIONS", "*", 200, "GET, HEAD, OPTIONS"},
        {"OPTIONS", "/a.txt", 200, "GET, HEAD, OPTIONS"},
        {"POST", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"PUT", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"DELETE", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"PATCH", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"TRACE", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"CONNECT", "/a.txt", 405, "GET, HEAD, OPTIONS"},
        {"BREW", "/a.txt", 501, ""},        {"get", "/a.txt", 501, ""},
        {"PROPFIND", "/a.txt", 501, ""},
    };
    for (const auto& c : cases) {
        Response r = ask(c.target, "", c.method);
        cr_expect_eq(r.status, c.status, "%s %s: %d", c.method, c.target, r.status);
        cr_expect_eq(field(r, "Allow"), c.allow, "%s", c.method);
    }
}
