// http_helpers.hpp - what the HTTP suites (test_http*.cpp) share: a daemon
// with extra keys in its http group, raw reads to EOF, and curl against it.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace itest::http_suite {

// The harness's configuration with `http_extra` ("key = value; ...") added
// to the http group, which the harness writes on one line.
std::string config_with_http(const Options& o, const std::string& http_extra);

// A prepared (not started) daemon whose http group holds `http_extra`.
Daemon prepared(const std::string& http_extra = "", const Options& o = {});

// Starts it and learns its port; fails the test (with the log) otherwise.
void start(Daemon& d);

// Reads until EOF or `timeout`; .second is true if EOF (or a reset) came.
std::pair<std::string, bool> drain(int fd, Duration timeout);

// "http://127.0.0.1:PORT/path" for the daemon.
std::string url(const Daemon& d, const std::string& path);

// What one raw request got: the first response, whether the server closed
// the connection after it, and whatever arrived after it.
struct Exchange {
    Response r;
    bool closed = false;   // EOF (or a reset) after the response
    std::string after;
};

// Sends `bytes` on a fresh connection, reads one response (waiting up to
// `read_wait`), then reads on for up to `close_wait` to learn whether more
// comes and whether the server closes.
Exchange exchange_raw(int port, const std::string& bytes, bool head = false,
                      Duration close_wait = std::chrono::seconds(3),
                      Duration read_wait = std::chrono::seconds(5));

// `s` with CR, LF and other control bytes made visible, for messages.
std::string printable(const std::string& s, size_t max = 300);

// curl -s -S --max-time 5 ARGS, run in the daemon's directory.
RunResult curl(const Daemon& d, const std::vector<std::string>& args);

}  // namespace itest::http_suite
