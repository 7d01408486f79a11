// http_helpers.cpp - see http_helpers.hpp.
#include "http_helpers.hpp"

#include <criterion/criterion.h>

#include <chrono>
#include <unistd.h>

namespace itest::http_suite {

std::string config_with_http(const Options& o, const std::string& http_extra)
{
    std::string text = config_text(o);
    const std::string group = "http = { ";
    size_t at = text.find(group);
    cr_assert(at != std::string::npos, "no 'http = { ' in the harness config:\n%s", text.c_str());
    text.insert(at + group.size(), http_extra + " ");
    return text;
}

Daemon prepared(const std::string& http_extra, const Options& o)
{
    Daemon d = Daemon::prepare(o);
    if (!http_extra.empty()) d.write_config_text(config_with_http(o, http_extra));
    return d;
}

void start(Daemon& d)
{
    D_ASSERT(d, d.start(), "preforkd -f -c %s did not log 'ready: generation 1'", d.conf.c_str());
    D_ASSERT(d, d.port > 0, "no 'listening on 127.0.0.1:PORT' line in the log");
}

std::pair<std::string, bool> drain(int fd, Duration timeout)
{
    using Clock = std::chrono::steady_clock;
    std::string got;
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
        if (left.count() <= 0) return {got, false};
        auto chunk = recv_some(fd, left);
        if (!chunk) return {got, false};
        if (chunk->empty()) return {got, true};
        got += *chunk;
    }
}

std::string url(const Daemon& d, const std::string& path)
{
    return "http://127.0.0.1:" + std::to_string(d.port) + path;
}

Exchange exchange_raw(int port, const std::string& bytes, bool head, Duration close_wait,
                      Duration read_wait)
{
    Exchange out;
    int fd = connect_tcp(port);
    if (fd < 0 || !send_all(fd, bytes)) {
        out.r.error = fd < 0 ? "connect failed" : "send failed";
        if (fd >= 0) close(fd);
        return out;
    }
    std::string buffer;
    out.r = read_response(fd, buffer, head, read_wait);
    if (out.r.ok) {
        auto [rest, eof] = drain(fd, close_wait);
        out.after = buffer + rest;
        out.closed = eof;
    }
    close(fd);
    return out;
}

std::string printable(const std::string& s, size_t max)
{
    std::string out;
    for (unsigned char c : s.substr(0, max)) {
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else if (c < 0x20 || c >= 0x7f) out += format("\\x%02x", c);
        else out += static_cast<char>(c);
    }
    return out;
}

RunResult curl(const Daemon& d, const std::vector<std::string>& args)
{
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-S", "--max-time", "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, d.dir);
}

}  // namespace itest::http_suite
