// test_parking.cpp - connection parking against the real daemon: a client
// that is not sending waits in the parker, not in a worker.  With a pool of
// one worker, each test shows the worker free for a second client while the
// first one is parked: a head completed in the parker, a keep-alive
// connection parked and resumed, expiry answered with 408 (and logged), the
// parker killed and respawned with no worker lost, a reload while
// connections are parked, and an old generation's idle keep-alive
// connection handed to the parker at a reload instead of being closed.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(parking, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

// One worker, so that a client holding it would starve every other.
Daemon one_worker(const std::string& http_extra = "")
{
    Options o{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1, .http_extra = http_extra};
    Daemon d = Daemon::prepare(o);
    make_dir(d.path("www2"));
    write_file(d.path("www2/x.txt"), "from the second root\n");
    start(d);
    return d;
}

// A second client is served while the first is parked: the proof that the
// only worker is not waiting on the first.
void other_client_is_served(const Daemon& d, const char* while_what)
{
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "a second client was not served while %s: %s '%s'",
             while_what, r.error.c_str(), r.status_line.c_str());
}

int connect_and_send(const Daemon& d, const std::string& bytes)
{
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect failed");
    D_ASSERT(d, send_all(fd, bytes), "send failed");
    return fd;
}

// The parker's published count, as the systemd status line would show it,
// is not visible here; the parker's own /proc entry is.
pid_t wait_parker(const Daemon& d)
{
    pid_t p = -1;
    wait_until([&] { return (p = parker_of(d.pid)) > 0; });
    return p;
}

}  // namespace

Test(parking, the_parker_runs_beside_the_workers) {
    Daemon d = one_worker();
    pid_t p = wait_parker(d);
    D_ASSERT(d, p > 0, "no process titled 'preforkd: parker' under the master");
    D_ASSERT(d, d.workers().size() == 1, "the parker is counted as a worker: %s",
             join(d.workers()).c_str());
    // Confined like a worker, with its own list (sandbox = true by default).
    bool confined = wait_until([&] { return proc_status_field(p, "Seccomp") == "2"; });
    D_ASSERT(d, confined, "the parker is not in seccomp filter mode: Seccomp %s",
             proc_status_field(p, "Seccomp").c_str());
    NO_SANITIZER_REPORTS();
}

Test(parking, a_head_completed_in_the_parker_is_served) {
    Daemon d = one_worker();
    int slow = connect_and_send(d, "GET /x.txt HTTP/1.1\r\nHost: local");
    other_client_is_served(d, "a head was incomplete");
    D_ASSERT(d, send_all(slow, "host\r\nConnection: close\r\n\r\n"), "send failed");
    std::string buffer;
    Response r = read_response(slow, buffer);
    close(slow);
    D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n",
             "the head completed in the parker: %s '%s'", r.error.c_str(), r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(parking, a_keepalive_connection_is_parked_and_resumed) {
    Daemon d = one_worker();
    int ka = connect_tcp(d.port);
    D_ASSERT(d, ka >= 0, "connect failed");
    std::string buffer;
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send failed");
    Response first = read_response(ka, buffer);
    D_ASSERT(d, first.ok && first.status == 200, "first request: %s", first.error.c_str());
    // The only worker is idle-short now (0 idle < min_spare 1): the idle
    // keep-alive connection goes to the parker and the worker is free.
    other_client_is_served(d, "a keep-alive connection was idle");
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "second send failed");
    Response second = read_response(ka, buffer);
    D_ASSERT(d, second.ok && second.status == 200, "the resumed connection: %s",
             second.error.c_str());
    D_ASSERT(d, second.header("connection") != "close", "the resumed connection was closed");
    close(ka);
    NO_SANITIZER_REPORTS();
}

Test(parking, an_expired_head_gets_408_and_is_logged) {
    Daemon d = one_worker("header_timeout = 2; header_timeout_max = 2;");
    int slow = connect_and_send(d, "GET /x.txt HTTP/1.1\r\nHo");
    other_client_is_served(d, "a head was incomplete");
    auto [answer, eof] = drain(slow, 20s);
    close(slow);
    D_ASSERT(d, answer.rfind("HTTP/1.1 408 ", 0) == 0, "the expired head got '%s'", answer.c_str());
    D_ASSERT(d, eof, "the connection was not closed after its 408");
    bool logged = wait_until([&] {
        return read_file(d.path("access.log")).find("\" 408 ") != std::string::npos;
    }, 10s);
    D_ASSERT(d, logged, "no 408 in the access log:\n%s", read_file(d.path("access.log")).c_str());
    NO_SANITIZER_REPORTS();
}

Test(parking, an_idle_keepalive_connection_expires_in_silence) {
    Daemon d = one_worker();
    Options o = d.opts;
    int ka = connect_tcp(d.port);
    std::string buffer;
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send failed");
    D_ASSERT(d, read_response(ka, buffer).ok, "first request failed");
    other_client_is_served(d, "a keep-alive connection was idle");
    auto [rest, eof] = drain(ka, std::chrono::seconds(o.keepalive_timeout + 15));
    close(ka);
    D_ASSERT(d, eof, "the idle connection was not closed after keepalive_timeout");
    D_ASSERT(d, rest.empty(), "an idle keep-alive connection got '%s' at expiry", rest.c_str());
    NO_SANITIZER_REPORTS();
}

// A client that stops reading its answer: the rest goes to the parker, which
// sends it as the client reads, and then holds the connection for its next
// request.  More than the socket buffers hold, so the worker cannot just
// write it all and forget it.
Test(parking, an_answer_the_client_does_not_read_is_finished_by_the_parker) {
    Daemon d = one_worker();
    const size_t size = 32u << 20;
    write_file(d.path("www/big.bin"), std::string(size, 'b'));
    int slow = connect_and_send(d, request("GET", "/big.bin", true));
    other_client_is_served(d, "a client was not reading its answer");
    std::string got;
    while (got.size() < size) {
        auto chunk = recv_some(slow, 20s);
        D_ASSERT(d, chunk.has_value() && !chunk->empty(), "the answer stopped after %zu bytes", got.size());
        got += *chunk;
        size_t end = got.find("\r\n\r\n");
        if (end != std::string::npos && got.size() - end - 4 >= size) break;
    }
    size_t end = got.find("\r\n\r\n");
    D_ASSERT(d, got.rfind("HTTP/1.1 200 ", 0) == 0 && end != std::string::npos && got.size() - end - 4 == size &&
                    got.find_first_not_of('b', end + 4) == std::string::npos,
             "the answer finished by the parker is not the file: %zu bytes, '%s'", got.size(),
             got.substr(0, got.find("\r\n")).c_str());
    std::string buffer;
    D_ASSERT(d, send_all(slow, request("GET", "/x.txt", true)), "send after the answer failed");
    Response next = read_response(slow, buffer);
    close(slow);
    D_ASSERT(d, next.ok && next.status == 200 && next.header("connection") != "close",
             "the next request on the connection: %s '%s'", next.error.c_str(), next.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(parking, the_parker_killed_is_respawned_and_no_worker_is_lost) {
    Daemon d = one_worker();
    pid_t p = wait_parker(d);
    D_ASSERT(d, p > 0, "no parker");
    auto workers = d.workers();
    D_ASSERT(d, kill(p, SIGKILL) == 0, "kill -KILL parker failed");
    pid_t q = -1;
    bool respawned = wait_until([&] { q = parker_of(d.pid); return q > 0 && q != p; }, 20s);
    D_ASSERT(d, respawned, "the parker was not respawned");
    D_ASSERT(d, d.workers() == workers, "workers changed: %s, were %s", join(d.workers()).c_str(),
             join(workers).c_str());
    // The new parker works: a head completed in it is served.
    int slow = connect_and_send(d, "GET /x.txt HTTP/1.1\r\nHo");
    other_client_is_served(d, "a head was incomplete after the respawn");
    D_ASSERT(d, send_all(slow, "st: local\r\nConnection: close\r\n\r\n"), "send failed");
    std::string buffer;
    Response r = read_response(slow, buffer);
    close(slow);
    D_ASSERT(d, r.ok && r.status == 200, "after the respawn: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(parking, a_reload_keeps_parked_connections) {
    Daemon d = one_worker();
    int ka = connect_tcp(d.port);
    std::string ka_buffer;
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send failed");
    D_ASSERT(d, read_response(ka, ka_buffer).ok, "first request failed");
    int slow = connect_and_send(d, "GET /x.txt HTTP/1.1\r\nHo");
    other_client_is_served(d, "two connections were parked");

    Options o = d.opts;
    o.root = "www2";
    d.write_config(o);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");

    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send on the parked keep-alive failed");
    Response r = read_response(ka, ka_buffer);
    D_ASSERT(d, r.ok && r.body == "from the second root\n",
             "the parked keep-alive connection after the reload: %s '%s'", r.error.c_str(),
             r.body.c_str());
    D_ASSERT(d, send_all(slow, "st: local\r\nConnection: close\r\n\r\n"), "send failed");
    std::string buffer;
    r = read_response(slow, buffer);
    D_ASSERT(d, r.ok && r.body == "from the second root\n",
             "the parked head after the reload: %s '%s'", r.error.c_str(), r.body.c_str());
    close(ka);
    close(slow);
    NO_SANITIZER_REPORTS();
}

// Without pressure (spare workers idle) an idle keep-alive connection stays
// with its worker; the reload then moves it to the parker instead of closing
// it, so its next request meets the new generation on the same connection.
Test(parking, a_reload_hands_old_keepalive_connections_to_the_parker) {
    Options o{.start = 3, .min_spare = 1, .max_spare = 3, .max = 4};
    Daemon d = Daemon::prepare(o);
    make_dir(d.path("www2"));
    write_file(d.path("www2/x.txt"), "from the second root\n");
    start(d);
    int ka = connect_tcp(d.port);
    std::string buffer;
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send failed");
    D_ASSERT(d, read_response(ka, buffer).ok, "first request failed");
    // Found by its socket in a worker's descriptors: polled, as a loaded
    // machine may show it between two processes for a moment.
    pid_t holder = -1, parker = parker_of(d.pid);
    bool held = wait_until([&] {
        holder = worker_serving(d.pid, ka, d.port);
        return holder > 0 && holder != parker;
    }, 10s);
    D_ASSERT(d, held, "the idle keep-alive connection is not held by a worker (holder %d, parker %d)", holder,
             parker);

    o.root = "www2";
    d.write_config(o);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
    D_ASSERT(d, wait_until([&] { return is_gone(holder); }, 10s), "the old worker %d stayed", holder);
    auto early = recv_some(ka, Duration(0));
    D_ASSERT(d, !early.has_value(), "the connection was closed or answered at the reload: '%s'",
             early ? early->c_str() : "");
    D_ASSERT(d, send_all(ka, request("GET", "/x.txt", true)), "send after the reload failed");
    Response r = read_response(ka, buffer);
    close(ka);
    D_ASSERT(d, r.ok && r.body == "from the second root\n",
             "the next request on the kept connection: %s '%s'", r.error.c_str(), r.body.c_str());
    NO_SANITIZER_REPORTS();
}
