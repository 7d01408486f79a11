// test_access_log.cpp - the buffered access log: workers gather lines and
// write many at a time, yet no line is lost or cut, however the worker ends
// (graceful stop, fast stop, reload, recycling), and no line waits longer
// than log.access_flush, whether the worker is idle or holding a keep-alive
// connection.  Most tests set access_flush = 60 so that only the event under
// test can have written the lines.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <regex>

#include "harness.hpp"

using namespace itest;

TestSuite(access_log, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

// The log group's buffering keys, for Options::log_extra.
std::string buffered(int flush_seconds, int buffer_bytes = 65536)
{
    return format("access_buffer = %d; access_flush = %d;", buffer_bytes, flush_seconds);
}

std::vector<std::string> access_lines(const Daemon& d)
{
    return lines_of(read_file(d.path("access.log")));
}

// `n` requests, each on its own connection, for /x.txt?tag-i.
void make_requests(Daemon& d, int n, const std::string& tag)
{
    for (int i = 0; i < n; ++i) {
        Response r = http_get(d.port, "/x.txt?" + tag + "-" + std::to_string(i));
        D_ASSERT(d, r.ok && r.status == 200, "request %d: %s", i, r.error.c_str());
    }
}

// Every request tag-0 .. tag-(n-1) has exactly one whole combined line.
std::string missing_or_broken(const Daemon& d, int n, const std::string& tag)
{
    static const std::regex line_re(
        R"(^127\.0\.0\.1 - - \[[^\]]+\] "GET /x\.txt\?[a-z]+-\d+ HTTP/1\.1" 200 20 "-" "[^"]*"$)");
    std::string problems;
    std::vector<std::string> lines = access_lines(d);
    for (const std::string& l : lines)
        if (!std::regex_match(l, line_re)) problems += "\n  not a whole line: '" + l + "'";
    for (int i = 0; i < n; ++i) {
        std::string needle = "?" + tag + "-" + std::to_string(i) + " ";
        auto count = std::count_if(lines.begin(), lines.end(),
                                   [&](const std::string& l) { return l.find(needle) != std::string::npos; });
        if (count != 1) problems += format("\n  %s-%d logged %ld times", tag.c_str(), i, long(count));
    }
    return problems;
}

void check_flushed_when(int sig)
{
    Daemon d = Daemon::prepare(Options{.log_extra = buffered(60)});
    D_ASSERT(d, d.start(), "daemon did not become ready");
    make_requests(d, 20, "stop");
    size_t before = access_lines(d).size();
    D_ASSERT(d, d.signal(sig), "kill failed");
    int status = wait_exit(d.pid, 10s);
    D_ASSERT(d, status == 0, "master exit status %d (-1: still running)", status);
    std::string problems = missing_or_broken(d, 20, "stop");
    D_ASSERT(d, problems.empty(), "after %s (%zu lines before it):%s", strsignal(sig), before, problems.c_str());
    NO_SANITIZER_REPORTS();
}

}  // namespace

Test(access_log, lines_are_held_then_written_on_graceful_stop, .timeout = 30) {
    check_flushed_when(SIGQUIT);
}

Test(access_log, lines_are_written_on_fast_stop, .timeout = 30) {
    check_flushed_when(SIGTERM);
}

Test(access_log, lines_of_the_old_generation_are_written_on_reload, .timeout = 30) {
    Daemon d = Daemon::prepare(Options{.log_extra = buffered(60)});
    D_ASSERT(d, d.start(), "daemon did not become ready");
    make_requests(d, 20, "reload");
    // Held, not written: with a 60 s flush and a 64 KiB buffer nothing but the
    // workers' exit writes them.
    size_t held = access_lines(d).size();
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
    bool all = wait_until([&] { return access_lines(d).size() >= 20; }, 5s);
    std::string problems = missing_or_broken(d, 20, "reload");
    D_ASSERT(d, held == 0, "%zu lines written before the reload with access_flush = 60", held);
    D_ASSERT(d, all && problems.empty(), "after the reload:%s", problems.c_str());
    NO_SANITIZER_REPORTS();
}

Test(access_log, lines_are_written_when_a_worker_is_recycled, .timeout = 30) {
    // max_requests below 10 has no jitter: the worker ends after exactly 5.
    Options o{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1, .max_requests = 5,
              .log_extra = buffered(60)};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    make_requests(d, 5, "recycle");
    bool all = wait_until([&] { return access_lines(d).size() >= 5; }, 5s);
    std::string problems = missing_or_broken(d, 5, "recycle");
    D_ASSERT(d, all && problems.empty(), "after max_requests:%s", problems.c_str());
    NO_SANITIZER_REPORTS();
}

// The flush timer interrupts an idle worker (asleep in accept) and one
// waiting on an idle keep-alive connection alike.
Test(access_log, a_line_waits_at_most_access_flush_seconds, .timeout = 30) {
    // min_spare 0: adaptive keep-alive would close the kept connection.
    Options o{.start = 1, .min_spare = 0, .max_spare = 1, .max = 1, .keepalive_timeout = 30,
              .log_extra = buffered(1)};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");

    int fd = connect_tcp(d.port);
    std::string buffer;
    for (int i = 0; i < 3; ++i) {
        D_ASSERT(d, fd >= 0 && send_all(fd, request("GET", "/x.txt?kept-" + std::to_string(i))), "send failed");
        Response r = read_response(fd, buffer);
        D_ASSERT(d, r.ok && r.status == 200, "keep-alive request %d: %s", i, r.error.c_str());
    }
    bool while_open = wait_until([&] { return access_lines(d).size() >= 3; }, 5s);
    // The connection is still open: the lines were not written by its end.
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt?kept-3", false)), "send on the kept connection failed");
    Response last = read_response(fd, buffer);
    ::close(fd);
    D_ASSERT(d, while_open, "%zu lines within 5 s on an open keep-alive connection, want 3",
             access_lines(d).size());
    D_ASSERT(d, last.ok && last.status == 200, "the kept connection was closed: %s", last.error.c_str());

    bool idle = wait_until([&] { return access_lines(d).size() >= 4; }, 5s);
    D_ASSERT(d, idle, "the last line was not written within 5 s by the idle worker");
    std::string problems = missing_or_broken(d, 4, "kept");
    D_ASSERT(d, problems.empty(), "%s", problems.c_str());
    NO_SANITIZER_REPORTS();
}

Test(access_log, a_full_buffer_is_written_at_once, .timeout = 30) {
    Options o{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1,
              .log_extra = buffered(60, 1024)};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    make_requests(d, 25, "full");
    // About 100 bytes a line: each time the buffer fills (every ten lines or
    // so) it is written, and the last few lines stay in it.
    bool written = wait_until([&] { return access_lines(d).size() >= 5; }, 5s);
    size_t n = access_lines(d).size();
    D_ASSERT(d, written && n < 25, "%zu of 25 lines written with a 1024-byte buffer and access_flush = 60", n);
    D_ASSERT(d, d.signal(SIGQUIT), "kill -QUIT failed");
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGQUIT");
    std::string problems = missing_or_broken(d, 25, "full");
    D_ASSERT(d, problems.empty(), "%s", problems.c_str());
    NO_SANITIZER_REPORTS();
}

Test(access_log, access_buffer_0_writes_each_line_at_once, .timeout = 30) {
    Daemon d = Daemon::prepare(Options{.log_extra = buffered(60, 0)});
    D_ASSERT(d, d.start(), "daemon did not become ready");
    for (int i = 0; i < 3; ++i) {
        make_requests(d, 1, "each" + std::string(1, char('a' + i)));
        bool written = wait_until([&] { return access_lines(d).size() == size_t(i + 1); }, 5s);
        D_ASSERT(d, written, "%zu lines after %d requests with access_buffer = 0", access_lines(d).size(), i + 1);
    }
    NO_SANITIZER_REPORTS();
}
