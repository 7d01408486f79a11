// test_access_log.cpp - the access log line: Common and Combined Log Format,
// Combined with timing, JSON, escaping of client-supplied fields, and lines appended to a worker's
// buffer exactly as format() gives them, time stamp included (it is cached
// per second, so it must change when the second does).
#include <criterion/criterion.h>

#include <cstdlib>
#include <ctime>
#include <syslog.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "preforkd/access_log.hpp"
#include "preforkd/http/fields.hpp"

using preforkd::access_log::Entry;
using preforkd::access_log::Format;
namespace access_log = preforkd::access_log;

namespace {

void utc()
{
    setenv("TZ", "UTC", 1);
    tzset();
}

// 2026-11-21 04:22:01 UTC
constexpr time_t kWhen = 1795234921;

Entry entry()
{
    Entry e;
    e.remote = "127.0.0.1";
    e.request_line = "GET /x.txt HTTP/1.1";
    e.status = 200;
    e.bytes = 20;
    e.referer = "http://example.test/";
    e.user_agent = "curl/7.88.1";
    e.when = kWhen;
    e.micros = 1234;
    return e;
}

}  // namespace

TestSuite(access_log, .init = utc, .timeout = 10);

Test(access_log, combined_and_common_lines)
{
    std::string combined = access_log::format(entry(), Format::combined);
    std::string timing = access_log::format(entry(), Format::combined_timing);
    std::string common = access_log::format(entry(), Format::common);
    // Exactly the standard fields: nothing after the User-Agent.
    cr_assert_str_eq(combined.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"curl/7.88.1\"\n");
    cr_assert_str_eq(timing.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"curl/7.88.1\" 1234\n");
    cr_assert_str_eq(common.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20\n");
}

Test(access_log, combined_tls_adds_protocol_cipher_and_resumption)
{
    Entry e = entry();
    std::string plain = access_log::format(e, Format::combined_tls);
    cr_assert_str_eq(plain.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"curl/7.88.1\" - - -\n");
    e.tls_protocol = "TLSv1.3";
    e.tls_cipher = "TLS_AES_128_GCM_SHA256";
    std::string full = access_log::format(e, Format::combined_tls);
    cr_assert(full.ends_with("\"curl/7.88.1\" TLSv1.3 TLS_AES_128_GCM_SHA256 .\n"), "%s", full.c_str());
    e.tls_resumed = true;
    std::string resumed = access_log::format(e, Format::combined_tls);
    cr_assert(resumed.ends_with(" TLSv1.3 TLS_AES_128_GCM_SHA256 r\n"), "%s", resumed.c_str());
    std::string json = access_log::format(e, Format::json);
    cr_assert(json.find(",\"tls_protocol\":\"TLSv1.3\",\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\","
                        "\"tls_resumed\":true,") != std::string::npos, "%s", json.c_str());
    // Plain HTTP lines keep the fields they always had.
    cr_assert(access_log::format(entry(), Format::json).find("tls_") == std::string::npos);
    cr_assert(access_log::format(e, Format::combined) == access_log::format(entry(), Format::combined));
}

Test(access_log, empty_fields_are_dashes)
{
    Entry e = entry();
    e.remote = "";
    e.bytes = 0;
    e.referer = "";
    e.user_agent = "";
    e.status = 304;
    std::string line = access_log::format(e, Format::combined_timing);
    cr_assert_str_eq(line.c_str(),
                     "- - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 304 - \"-\" \"-\" 1234\n");
}

Test(access_log, client_fields_cannot_forge_a_line)
{
    Entry e = entry();
    e.user_agent = "x\" 200 1\n127.0.0.1 \\ \x01\xff";
    std::string line = access_log::format(e, Format::combined);
    cr_assert_str_eq(line.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"x\\\" 200 1\\x0a127.0.0.1 \\\\ \\x01\\xff\"\n");
}

Test(access_log, appended_lines_match_format_and_follow_the_clock)
{
    std::string buffer;
    Entry first = entry(), later = entry(), earlier = entry();
    later.when = kWhen + 61;
    earlier.when = kWhen - 3600;
    later.request_line = "HEAD / HTTP/1.0";
    access_log::append(buffer, first, Format::combined);
    access_log::append(buffer, later, Format::combined);
    access_log::append(buffer, earlier, Format::common);
    std::string want = access_log::format(first, Format::combined) +
                       access_log::format(later, Format::combined) +
                       access_log::format(earlier, Format::common);
    cr_assert_str_eq(buffer.c_str(), want.c_str());
    cr_assert(buffer.find("[21/Nov/2026:04:23:02 +0000] \"HEAD / HTTP/1.0\"") != std::string::npos,
              "the second line kept the first line's time:\n%s", buffer.c_str());
    cr_assert(buffer.find("[21/Nov/2026:03:22:01 +0000]") != std::string::npos,
              "the third line has the wrong time:\n%s", buffer.c_str());
}

// The digits of every number on a log line and in an ETag, to the widest.
Test(access_log, numbers_are_written_whole_in_both_bases)
{
    std::string out;
    preforkd::http::append_unsigned(out, 0);
    out += ' ';
    preforkd::http::append_unsigned(out, 18446744073709551615u);
    out += ' ';
    preforkd::http::append_unsigned(out, 0, 16);
    out += ' ';
    preforkd::http::append_unsigned(out, 18446744073709551615u, 16);
    out += ' ';
    preforkd::http::append_unsigned(out, 0xde0b6b3a764007b, 16);
    cr_assert_str_eq(out.c_str(), "0 18446744073709551615 0 ffffffffffffffff de0b6b3a764007b");
}

Test(access_log, configured_formats_map_to_the_same_format)
{
    cr_expect(access_log::format_of(preforkd::config::AccessFormat::common) == Format::common);
    cr_expect(access_log::format_of(preforkd::config::AccessFormat::combined) == Format::combined);
}

Test(access_log, json_line_carries_site_host_and_request_id)
{
    Entry e = entry();
    e.host = "www.example.org";
    e.site = "example";
    e.request_id = 0x1234000000ab;
    std::string line = access_log::format(e, Format::json);
    cr_assert_str_eq(line.c_str(),
                     "{\"time\":\"2026-11-21T04:22:01+00:00\",\"remote\":\"127.0.0.1\","
                     "\"host\":\"www.example.org\",\"site\":\"example\","
                     "\"request\":\"GET /x.txt HTTP/1.1\",\"status\":200,\"bytes\":20,"
                     "\"referer\":\"http://example.test/\",\"user_agent\":\"curl/7.88.1\","
                     "\"duration_us\":1234,\"request_id\":\"00001234000000ab\"}\n");
}

// Lines with every kind of hostile byte, parsed by python3's json module:
// each must be one valid object whose fields read back as sent (bytes
// outside ASCII come back as the code points U+0080..U+00FF).
Test(access_log, json_lines_parse_with_python)
{
    std::string lines;
    Entry e = entry();
    e.user_agent = "quote\" backslash\\ newline\n tab\t del\x7f high\xc3\xa9";
    e.referer = "";
    e.host = "Example.ORG:8080";
    e.site = "example";
    access_log::append(lines, e, Format::json);
    e.request_line = "GET /\x01\x1f HTTP/1.1";
    access_log::append(lines, e, Format::json);
    char path[] = "/tmp/preforkd-json-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, lines.data(), lines.size()), ssize_t(lines.size()));
    close(fd);
    std::string cmd = std::string("python3 -c '"
                                  "import json,sys\n"
                                  "rows=[json.loads(l) for l in open(sys.argv[1])]\n"
                                  "assert len(rows)==2\n"
                                  "assert rows[0][\"user_agent\"]==\"quote\\\" backslash\\\\ newline\\n tab\\t del\\x7f high\\xc3\\xa9\", rows[0]\n"
                                  "assert rows[0][\"host\"]==\"Example.ORG:8080\" and rows[0][\"status\"]==200\n"
                                  "assert rows[1][\"request\"]==\"GET /\\x01\\x1f HTTP/1.1\"\n"
                                  "' ") + path;
    int rc = system(cmd.c_str());
    unlink(path);
    cr_expect_eq(rc, 0, "python3 could not parse or read back:\n%s", lines.c_str());
}

Test(access_log, json_escapes_what_clients_send)
{
    Entry e = entry();
    e.user_agent = "a\"b\\c\n\x01\xff";
    std::string line = access_log::format(e, Format::json);
    cr_assert(line.find("\"user_agent\":\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"") != std::string::npos,
              "not escaped: %s", line.c_str());
    cr_assert_eq(line.find('\n'), line.size() - 1, "a raw newline inside the line: %s", line.c_str());
}

// Reopened descriptors reach the worker with their log's number, the
// newest per log; the older ones queued for the same log are closed.
Test(access_log, reopened_descriptors_arrive_per_log_newest_first)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    int a[2], b[2], c[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    cr_assert_eq(pipe(c), 0);
    cr_assert(access_log::send_fd(sv[0], a[1], 0));
    cr_assert(access_log::send_fd(sv[0], b[1], 2));
    cr_assert(access_log::send_fd(sv[0], c[1], 0));
    std::vector<access_log::Received> got = access_log::receive_fds(sv[1]);
    cr_assert_eq(got.size(), 2u);
    cr_expect_eq(got[0].sink, 0u);
    cr_expect_eq(got[1].sink, 2u);
    // Each descriptor is a new one for the same pipe: writing to it reaches
    // the pipe the sender passed.
    cr_assert_eq(write(got[0].fd.get(), "c", 1), 1);
    cr_assert_eq(write(got[1].fd.get(), "b", 1), 1);
    char ch = 0;
    cr_expect_eq(read(c[0], &ch, 1), 1);
    cr_expect_eq(ch, 'c');
    cr_expect_eq(read(b[0], &ch, 1), 1);
    cr_expect_eq(ch, 'b');
    cr_expect(access_log::receive_fds(sv[1]).empty());
    for (int fd : {sv[0], sv[1], a[0], a[1], b[0], b[1], c[0], c[1]}) close(fd);
}

// What a worker in syslog mode passes to syslog(3): level info, at the
// access log's own facility, whatever the diagnostics' facility is.
Test(access_log, syslog_lines_use_the_access_facility_at_info)
{
    preforkd::config::Config c = preforkd::config::load_string(
        "log = { syslog_facility = \"local1\"; access_log = \"syslog\";"
        " access_syslog_facility = \"local6\"; };");
    cr_assert(access_log::mode_of(c) == access_log::Mode::syslog);
    int priority = access_log::syslog_priority(c);
    cr_assert_eq(LOG_FAC(priority) << 3, LOG_LOCAL6);
    cr_assert_eq(LOG_PRI(priority), LOG_INFO);
    cr_assert_eq(access_log::syslog_priority(preforkd::config::Config{}), LOG_DAEMON | LOG_INFO);
}
