// test_serve.cpp - files are served: GET over a raw socket and with curl(1),
// HEAD without a body, two requests on one keep-alive connection, 404.
#include <criterion/criterion.h>
#include <unistd.h>

#include "harness.hpp"

using namespace itest;

TestSuite(serve, .init = setup, .fini = cleanup, .timeout = 40);

namespace {
Daemon started() {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "preforkd -f -c %s did not log 'ready: generation 1'", d.conf.c_str());
    D_ASSERT(d, d.port > 0, "no 'listening on 127.0.0.1:PORT' line in the log");
    return d;
}
}  // namespace

Test(serve, get_over_raw_socket, .timeout = 30) {
    Daemon d = started();
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok, "GET /x.txt: %s", r.error.c_str());
    D_ASSERT(d, r.status == 200, "GET /x.txt: status line '%s'", r.status_line.c_str());
    D_ASSERT(d, r.body == "hello from preforkd\n", "GET /x.txt: body '%s'", r.body.c_str());
    D_ASSERT(d, r.header("content-length") == "20", "Content-Length '%s', want 20",
             r.header("content-length").c_str());

    Response index = http_get(d.port, "/");
    D_ASSERT(d, index.ok && index.status == 200, "GET /: %s %s", index.error.c_str(),
             index.status_line.c_str());
    D_ASSERT(d, index.body == "<h1>index of www</h1>\n", "GET / did not serve index.html: '%s'",
             index.body.c_str());
    NO_SANITIZER_REPORTS();
}

Test(serve, get_with_curl, .timeout = 30) {
    Daemon d = started();
    std::string base = "http://127.0.0.1:" + std::to_string(d.port);
    RunResult r = run({"/usr/bin/curl", "-s", "-S", "--max-time", "5", base + "/x.txt"}, d.dir);
    D_ASSERT(d, r.status == 0, "curl exited %d: %s", r.status, r.err.c_str());
    D_ASSERT(d, r.out == "hello from preforkd\n", "curl got '%s'", r.out.c_str());

    RunResult missing = run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                             "--max-time", "5", base + "/no-such-file"},
                            d.dir);
    D_ASSERT(d, missing.out == "404", "curl /no-such-file: http_code '%s'", missing.out.c_str());

    RunResult head = run({"/usr/bin/curl", "-s", "-I", "--max-time", "5", base + "/x.txt"}, d.dir);
    D_ASSERT(d, head.status == 0 && head.out.rfind("HTTP/1.1 200", 0) == 0,
             "curl -I: exit %d, '%s'", head.status, head.out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(serve, head_has_no_body, .timeout = 30) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect to 127.0.0.1:%d failed", d.port);
    std::string buffer;
    D_ASSERT(d, send_all(fd, request("HEAD", "/x.txt")), "send HEAD failed");
    Response head = read_response(fd, buffer, true);
    D_ASSERT(d, head.ok && head.status == 200, "HEAD /x.txt: %s %s", head.error.c_str(),
             head.status_line.c_str());
    D_ASSERT(d, head.header("content-length") == "20",
             "HEAD should give the length of the GET body (20), got '%s'",
             head.header("content-length").c_str());
    // If HEAD had sent a body, it would come before the next status line.
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt")), "send GET after HEAD failed");
    Response get = read_response(fd, buffer, false);
    D_ASSERT(d, get.ok, "GET after HEAD on the same connection: %s (a HEAD body?)",
             get.error.c_str());
    D_ASSERT(d, get.status == 200 && get.body == "hello from preforkd\n",
             "GET after HEAD: '%s' body '%s'", get.status_line.c_str(), get.body.c_str());
    close(fd);
    NO_SANITIZER_REPORTS();
}

Test(serve, keepalive_two_requests_one_connection, .timeout = 30) {
    Daemon d = started();
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect to 127.0.0.1:%d failed", d.port);
    std::string buffer;
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt")), "send 1 failed");
    Response first = read_response(fd, buffer);
    D_ASSERT(d, first.ok && first.status == 200, "first response: %s %s", first.error.c_str(),
             first.status_line.c_str());
    D_ASSERT(d, first.header("connection") != "close",
             "HTTP/1.1 response without Connection: close expected, got 'Connection: %s'",
             first.header("connection").c_str());
    D_ASSERT(d, send_all(fd, request("GET", "/index.html", false)), "send 2 failed");
    Response second = read_response(fd, buffer);
    D_ASSERT(d, second.ok, "second request on the same connection: %s", second.error.c_str());
    D_ASSERT(d, second.status == 200 && second.body == "<h1>index of www</h1>\n",
             "second response: '%s' body '%s'", second.status_line.c_str(), second.body.c_str());
    // We asked for Connection: close: the server closes after the response.
    auto rest = recv_some(fd, 3s);
    D_ASSERT(d, rest && rest->empty(), "connection not closed after 'Connection: close'");
    close(fd);
    NO_SANITIZER_REPORTS();
}

Test(serve, missing_file_is_404, .timeout = 30) {
    Daemon d = started();
    Response r = http_get(d.port, "/does-not-exist.html");
    D_ASSERT(d, r.ok && r.status == 404, "GET /does-not-exist.html: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    Response up = http_get(d.port, "/../preforkd.conf");
    D_ASSERT(d, up.ok && up.status / 100 == 4,
             "GET /../preforkd.conf must be a 4xx, got %s '%s'", up.error.c_str(),
             up.status_line.c_str());
    D_ASSERT(d, up.body.find("pid_file") == std::string::npos,
             "GET /../preforkd.conf leaked the config file");
    NO_SANITIZER_REPORTS();
}
