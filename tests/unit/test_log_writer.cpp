// test_log_writer.cpp - a worker's buffered access log: every line reaches
// the file whole and in order across many buffer-full writes, although the
// buffer's pages go back to the kernel after each write.
#include <criterion/criterion.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "preforkd/log_writer.hpp"

using namespace preforkd;

namespace {

std::string g_path;   // this test's log file, removed by the suite's .fini

void remove_log()
{
    if (!g_path.empty())
        ::unlink(g_path.c_str());
}

std::string read_all(const std::string& path)
{
    std::string out;
    char buf[65536];
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        out.append(buf, std::size_t(n));
    ::close(fd);
    return out;
}

}  // namespace

TestSuite(log_writer, .fini = remove_log, .timeout = 30);

Test(log_writer, lines_survive_many_buffer_writes_whole_and_in_order)
{
    // The flush timer's SIGALRM belongs to the worker's loop; none here.
    ::signal(SIGALRM, SIG_IGN);
    char tmpl[] = "/tmp/preforkd-log-writer-XXXXXX";
    int fd = ::mkstemp(tmpl);
    cr_assert(fd >= 0);
    g_path = tmpl;
    ::close(fd);
    fd = ::open(tmpl, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0);

    std::vector<log_writer::Sink> sinks;
    sinks.push_back({Fd(fd), g_path, access_log::Format::common});
    log_writer::Settings settings{.mode = access_log::Mode::file,
                                  .format = access_log::Format::common,
                                  .buffer = 65536,   // many whole pages
                                  .flush_seconds = 60};
    log_writer::Writer w(settings, std::move(sinks), {});
    constexpr int kLines = 5000;   // some 9 buffers
    for (int i = 0; i < kLines; ++i) {
        std::string request = "GET /file-" + std::to_string(i) + " HTTP/1.1";
        access_log::Entry e;
        e.remote = "127.0.0.1";
        e.request_line = request;
        e.status = 200;
        e.bytes = 100;
        e.when = 1700000000;
        w.write(e);
    }
    w.flush();

    std::string log = read_all(g_path);
    std::size_t at = 0;
    int lines = 0;
    for (std::size_t nl; (nl = log.find('\n', at)) != std::string::npos; at = nl + 1) {
        std::string line = log.substr(at, nl - at);
        std::string want = "\"GET /file-" + std::to_string(lines) + " HTTP/1.1\" 200 100";
        cr_assert(line.rfind("127.0.0.1 ", 0) == 0 && line.find(want) != std::string::npos,
                  "line %d is \"%s\", want one with %s", lines, line.c_str(), want.c_str());
        ++lines;
    }
    cr_assert_eq(at, log.size(), "the log ends in a torn line");
    cr_assert_eq(lines, kLines, "%d lines in the log, want %d", lines, kLines);
}
