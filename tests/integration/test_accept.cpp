// test_accept.cpp - how connections reach workers: with defer_accept a
// client that connected but has not spoken holds no worker; with one
// listener workers sleep in a blocking accept(), with several in epoll, and
// a reload between the two leaves no worker stuck in the wrong kind of wait.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(accept, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

// One worker, a short header timeout, and defer_accept as given.
Daemon one_worker(int defer_seconds)
{
    Options o{.start = 1, .min_spare = 0, .max_spare = 1, .max = 1,
              .extra = format("defer_accept = %d;\n", defer_seconds)};
    // Parking off: these tests are about what reaches a worker that waits
    // on its client itself (test_parking.cpp has the parked case).
    return prepared("header_timeout = 2; parking = false;", o);
}

// Starts `d`, opens a connection that says nothing, then makes a request on
// a second one; `silent` is left open for the test to inspect.
Response request_beside_a_silent_client(Daemon& d, int& silent)
{
    start(d);
    silent = connect_tcp(d.port);
    D_ASSERT(d, silent >= 0, "connect failed");
    return http_get(d.port, "/x.txt");
}

}  // namespace

Test(accept, a_silent_client_does_not_hold_the_only_worker, .timeout = 30) {
    Daemon d = one_worker(5);
    int silent = -1;
    Response r = request_beside_a_silent_client(d, silent);
    bool silent_untouched = !recv_some(silent, Duration(0)).has_value();
    D_ASSERT(d, r.ok && r.status == 200, "GET beside a silent connection: %s", r.error.c_str());
    D_ASSERT(d, silent_untouched, "the silent connection was answered before the speaking one was served");
    // Once it speaks, the silent client is served like any other.
    std::string buffer;
    D_ASSERT(d, send_all(silent, request("GET", "/x.txt", false)), "send on the silent connection failed");
    Response late = read_response(silent, buffer);
    ::close(silent);
    D_ASSERT(d, late.ok && late.status == 200, "the silent client, once it spoke: %s", late.error.c_str());
    NO_SANITIZER_REPORTS();
}

// The same scene with defer_accept = 0: the only worker takes the silent
// connection first and holds it until its header timeout gives it a 408.
Test(accept, defer_accept_0_hands_over_silent_connections, .timeout = 30) {
    Daemon d = one_worker(0);
    int silent = -1;
    Response r = request_beside_a_silent_client(d, silent);
    auto answer = recv_some(silent, Duration(0));
    ::close(silent);
    D_ASSERT(d, r.ok && r.status == 200, "GET after the silent connection: %s", r.error.c_str());
    D_ASSERT(d, answer && answer->rfind("HTTP/1.1 408", 0) == 0,
             "want the silent connection to have its 408 before the next client is served, have '%s'",
             answer ? answer->c_str() : "(nothing)");
    NO_SANITIZER_REPORTS();
}

Test(accept, reload_between_one_and_two_listeners, .timeout = 60) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    std::string sock = d.path("s.sock");

    // One listener -> two: the workers that slept in accept() retire, the new
    // ones wait in epoll on both.
    auto blocking = d.workers();
    Options one = d.opts, two = d.opts;
    two.listen = {"127.0.0.1:0", "unix:" + sock};
    d.write_config(two);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
    for (pid_t w : blocking) D_ASSERT(d, wait_until([&] { return is_gone(w); }, 5s), "worker %d stayed", w);
    for (int i = 0; i < 5; ++i) {
        Response tcp = http_get(d.port, "/x.txt"), unix = http_get_unix(sock, "/x.txt");
        D_ASSERT(d, tcp.ok && tcp.status == 200, "TCP with two listeners: %s", tcp.error.c_str());
        D_ASSERT(d, unix.ok && unix.status == 200, "unix with two listeners: %s", unix.error.c_str());
    }

    // Two -> one: the epoll workers retire although their listener is now
    // blocking, and the new ones serve from accept().
    auto polling = d.workers();
    d.write_config(one);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 2 retired").has_value(), "generation 2 never retired");
    for (pid_t w : polling) D_ASSERT(d, wait_until([&] { return is_gone(w); }, 5s), "worker %d stayed", w);
    for (int i = 0; i < 5; ++i) {
        Response tcp = http_get(d.port, "/x.txt");
        D_ASSERT(d, tcp.ok && tcp.status == 200, "TCP with one listener again: %s", tcp.error.c_str());
    }
    D_ASSERT(d, !file_exists(sock), "unix socket %s left after it was dropped", sock.c_str());
    D_ASSERT(d, d.count_log("reload failed") == 0, "a reload failed");

    // Idle workers in accept() stop at once on a graceful stop.
    D_ASSERT(d, d.signal(SIGQUIT), "kill -QUIT failed");
    D_ASSERT(d, wait_exit(d.pid, 5s) == 0, "master did not exit 0 within 5 s of SIGQUIT");
    NO_SANITIZER_REPORTS();
}
