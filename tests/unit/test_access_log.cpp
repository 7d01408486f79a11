// test_access_log.cpp - the access log line: Common and Combined Log Format,
// escaping of client-supplied fields, and lines appended to a worker's
// buffer exactly as format() gives them, time stamp included (it is cached
// per second, so it must change when the second does).
#include <criterion/criterion.h>

#include <cstdlib>
#include <ctime>
#include <syslog.h>
#include <string>

#include "preforkd/access_log.hpp"
#include "preforkd/http/fields.hpp"

using preforkd::access_log::Entry;
using preforkd::config::AccessFormat;
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
    std::string combined = access_log::format(entry(), AccessFormat::combined);
    std::string common = access_log::format(entry(), AccessFormat::common);
    cr_assert_str_eq(combined.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"curl/7.88.1\" 1234\n");
    cr_assert_str_eq(common.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20\n");
}

Test(access_log, empty_fields_are_dashes)
{
    Entry e = entry();
    e.remote = "";
    e.bytes = 0;
    e.referer = "";
    e.user_agent = "";
    e.status = 304;
    std::string line = access_log::format(e, AccessFormat::combined);
    cr_assert_str_eq(line.c_str(),
                     "- - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 304 - \"-\" \"-\" 1234\n");
}

Test(access_log, client_fields_cannot_forge_a_line)
{
    Entry e = entry();
    e.user_agent = "x\" 200 1\n127.0.0.1 \\ \x01\xff";
    std::string line = access_log::format(e, AccessFormat::combined);
    cr_assert_str_eq(line.c_str(),
                     "127.0.0.1 - - [21/Nov/2026:04:22:01 +0000] \"GET /x.txt HTTP/1.1\" 200 20 "
                     "\"http://example.test/\" \"x\\\" 200 1\\x0a127.0.0.1 \\\\ \\x01\\xff\" 1234\n");
}

Test(access_log, appended_lines_match_format_and_follow_the_clock)
{
    std::string buffer;
    Entry first = entry(), later = entry(), earlier = entry();
    later.when = kWhen + 61;
    earlier.when = kWhen - 3600;
    later.request_line = "HEAD / HTTP/1.0";
    access_log::append(buffer, first, AccessFormat::combined);
    access_log::append(buffer, later, AccessFormat::combined);
    access_log::append(buffer, earlier, AccessFormat::common);
    std::string want = access_log::format(first, AccessFormat::combined) +
                       access_log::format(later, AccessFormat::combined) +
                       access_log::format(earlier, AccessFormat::common);
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
