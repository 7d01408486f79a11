// test_reliability.cpp - issue 6: reliability under load, faults and hostile
// clients, the quick scenarios (each well under 15 s) that `make check` runs.
// The long versions (reload under load for 15 s, slowloris for 30 s,
// slowhttptest, 1,000 aborted downloads, the 100,000-request leak soak, twenty
// kills in a row, the 5-minute fuzz run) are in tests/stress (`make stress`).
// The scenarios shared by both are in tests/stress/reliability.hpp.
//
// Every test ends with REL_LOG_CLEAN: the daemon's log shows no crash or
// "exited on signal" line the scenario did not cause, and no sanitizer report.
#include <criterion/criterion.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include "../stress/reliability.hpp"

using namespace itest;
using namespace rel;

namespace {

std::vector<std::string> g_mounts;   // tmpfs mounts to detach before cleanup()

void fini()
{
    for (const auto& m : g_mounts) ::umount2(m.c_str(), MNT_DETACH);
    g_mounts.clear();
    cleanup();
}

// Writes the request and as much of `body` as the server takes within
// `limit` (it may close early); then reads the response.
Response send_oversized(int port, const std::string& head, size_t body_bytes, Duration limit, size_t& body_sent)
{
    Response r;
    body_sent = 0;
    int fd = connect_tcp(port);
    if (fd < 0) {
        r.error = "connect failed";
        return r;
    }
    send_all(fd, head);
    std::string chunk(1 << 16, 'z');
    auto deadline = Clock::now() + limit;
    while (body_sent < body_bytes && Clock::now() < deadline) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 200) <= 0) break;   // the server stopped reading
        if (p.revents & (POLLERR | POLLHUP)) break;
        ssize_t n = ::send(fd, chunk.data(), std::min(chunk.size(), body_bytes - body_sent), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        body_sent += static_cast<size_t>(n);
    }
    std::string buffer;
    r = read_response(fd, buffer, false, 5s);
    // Then the connection must end: EOF or a reset, within 2 s.
    bool closed = false;
    auto end = Clock::now() + 2s;
    while (Clock::now() < end) {
        auto more = recv_some(fd, 200ms);
        if (more && more->empty()) {
            closed = true;
            break;
        }
    }
    ::close(fd);
    if (r.ok && !closed) {
        r.ok = false;
        r.error = "connection still open 2 s after the " + std::to_string(r.status) + " response";
    }
    return r;
}

}  // namespace

TestSuite(reliability, .init = setup, .fini = fini, .timeout = 60);

// 1 + 9, shortened: 4 s of load, HUP every second, the access log renamed and
// USR1 every 1.5 s.  The 15-second run is in make stress.
Test(reliability, reload_under_load_with_log_rotation, .timeout = 40) {
    scenario_reload_under_load(4, 1000, 1500);
}

// 2: each invalid reload keeps the old configuration serving under load,
// logs one line naming the problem, and the next valid HUP works.
Test(reliability, invalid_reloads_under_load_keep_serving, .timeout = 50) {
    Options o{.start = 3, .min_spare = 1, .max_spare = 4, .max = 8};
    Daemon d = Daemon::prepare(o);
    write_file(d.path("www/x.txt"), "generation one\n");
    make_dir(d.path("www2"));
    write_file(d.path("www2/x.txt"), "generation two\n");
    make_dir(d.path("logdir"));
    D_ASSERT(d, d.start(), "daemon did not become ready");
    int taken_port = -1;
    int taken = listen_somewhere(taken_port);
    D_ASSERT(d, taken >= 0, "could not hold a port for the taken-address case");

    Load load;
    load.start(d.port, 1, 1, 30s, 100000);
    struct Case {
        const char* what;
        std::string text;
        std::string expect;   // in the "reload failed" line
    };
    Options missing_root = o, taken_listen = o, bad_log = o;
    missing_root.root = "no-such-root";
    taken_listen.listen = {"127.0.0.1:0", "127.0.0.1:" + std::to_string(taken_port)};
    bad_log.access_log = "logdir";
    std::vector<Case> cases = {
        {"syntax error", config_text(o) + "}\n", "syntax error"},
        {"unknown key", config_with(o, "no_such_knob = 1;"), "no_such_knob"},
        {"missing root", config_text(missing_root), "no-such-root"},
        {"listen address taken", config_text(taken_listen), "Address already in use"},
        {"unwritable access log", config_text(bad_log), "logdir"},
    };
    std::string report;
    for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        d.write_config_text(c.text);
        auto t0 = Clock::now();
        D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
        bool logged = wait_until([&] { return d.count_log("reload failed") >= i + 1; }, 5s);
        long ms = ms_since(t0);
        nap(300ms);   // a second line would show up by now
        size_t lines = d.count_log("reload failed");
        auto line = lines_of(d.log_text());
        std::string said;
        for (const auto& l : line)
            if (contains(l, "reload failed")) said = l;
        Response r = http_get(d.port, "/x.txt");
        report += format(" %s: rejected in %ld ms;", c.what, ms);
        D_ASSERT(d, logged, "%s: no 'reload failed' line", c.what);
        D_ASSERT(d, lines == i + 1, "%s: %zu 'reload failed' lines, want %zu", c.what, lines, i + 1);
        D_ASSERT(d, contains(said, c.expect), "%s: the line does not say '%s': %s", c.what, c.expect.c_str(),
                 said.c_str());
        D_ASSERT(d, r.ok && r.body == "generation one\n", "%s: the old configuration is not serving: %s '%s'",
                 c.what, r.error.c_str(), r.body.c_str());
        D_ASSERT(d, d.count_log("reload: generation 2") == 0, "%s: a new generation started", c.what);
    }
    ::close(taken);
    Options good = o;
    good.root = "www2";
    d.write_config(good);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "the valid reload did not complete");
    bool switched = wait_until([&] { return http_get(d.port, "/x.txt").body == "generation two\n"; }, 5s);
    Load::Stats s = load.join();
    cr_log_info("invalid reloads under load:%s then a valid reload; load: %ld fresh ok, %ld failed, %ld non-200; "
                "keep-alive %ld ok, %ld cut mid-response, %ld closed between requests",
                report.c_str(), s.fresh_ok, s.fresh_failed, s.fresh_non200, s.ka_ok, s.ka_mid_response,
                s.ka_between);
    D_ASSERT(d, switched, "the valid reload does not serve the new root");
    D_ASSERT(d, s.fresh_failed == 0 && s.fresh_non200 == 0 && s.ka_mid_response == 0 && s.ka_non200 == 0,
             "requests failed under the invalid reloads; first: %s", s.first_failure.c_str());
    D_ASSERT(d, s.fresh_ok + s.ka_ok >= 100, "load too small: %ld", s.fresh_ok + s.ka_ok);
    REL_LOG_CLEAN(d);
}

// 3, first half: a worker killed mid-download is replaced within 1 s and
// only its one connection is affected.
Test(reliability, killed_worker_replaced_within_a_second_only_its_connection_lost, .timeout = 40) {
    // max = start: the pool cannot grow under the load, so the kill takes it
    // below its floor and the worker must be replaced (a worker above the
    // floor that dies is, by the pool's rules, not replaced while enough
    // idle workers remain).
    Options o{.start = 4, .min_spare = 1, .max_spare = 4, .max = 4};
    // The victim must be a worker busy with a download; with parking the
    // parker would finish it.
    o.http_extra = "parking = false;";
    Daemon d = Daemon::prepare(o);
    make_big_file(d.path("www/big.bin"), 32u << 20, true);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(4), "want 4 workers, have %s", join(d.workers()).c_str());

    Load load;
    load.start(d.port, 2, 1, 20s, 100000);
    int victim_fd = connect_tcp(d.port, 4096);
    D_ASSERT(d, victim_fd >= 0 && send_all(victim_fd, request("GET", "/big.bin", false)), "victim request failed");
    bool eof = false;
    size_t got = drain(victim_fd, 64u << 10, 5s, eof);
    pid_t victim = -1;
    wait_until([&] { return (victim = worker_serving(d.pid, victim_fd, d.port)) > 0; }, 3s);
    D_ASSERT(d, got == (64u << 10) && victim > 0, "no worker busy with the download (%zu bytes, worker %d)", got,
             victim);
    nap(500ms);   // load before the kill
    auto before = d.workers();
    auto t0 = Clock::now();
    D_ASSERT(d, ::kill(victim, SIGKILL) == 0, "kill -KILL %d failed", victim);
    bool replaced = wait_until([&] {
        auto now = d.workers();
        bool fresh = std::any_of(now.begin(), now.end(),
                                 [&](pid_t w) { return std::find(before.begin(), before.end(), w) == before.end(); });
        return is_gone(victim) && fresh && now.size() >= before.size();
    }, 5s);
    long replaced_ms = ms_since(t0);
    size_t rest = drain(victim_fd, 64u << 20, 5s, eof);
    ::close(victim_fd);
    nap(500ms);   // load after the kill
    Load::Stats s = load.join();
    cr_log_info("worker SIGKILL under load: replaced in %ld ms; the victim download got %zu of %u bytes, then %s; "
                "other requests: %ld fresh ok, %ld failed, %ld non-200, %ld keep-alive ok, %ld cut",
                replaced_ms, got + rest, 32u << 20, eof ? "EOF" : "nothing", s.fresh_ok, s.fresh_failed,
                s.fresh_non200, s.ka_ok, s.ka_mid_response);
    D_ASSERT(d, replaced && replaced_ms <= 1000, "worker %d not replaced within 1 s (%ld ms; workers %s -> %s)",
             victim, replaced_ms, join(before).c_str(), join(d.workers()).c_str());
    D_ASSERT(d, eof && got + rest < (32u << 20), "the victim's download was not cut (%zu bytes)", got + rest);
    D_ASSERT(d, s.fresh_failed == 0 && s.fresh_non200 == 0 && s.ka_mid_response == 0 && s.ka_non200 == 0,
             "other connections were affected; first: %s", s.first_failure.c_str());
    D_ASSERT(d, d.count_log("exited on signal 9") == 1, "want one 'exited on signal 9' line, have %zu",
             d.count_log("exited on signal 9"));
    REL_LOG_CLEAN(d, format("worker %d exited on signal 9", victim));
}

// 3, second half, shortened: workers killed as fast as they appear trigger
// the back-off message, not a fork storm.  Twenty kills are in make stress.
Test(reliability, kill_loop_backs_off_without_fork_storm, .timeout = 40) {
    scenario_kill_loop(8, 6s);
}

// 4: master SIGKILL: workers gone within 5 s, the port free; a new start
// succeeds over the stale pid file, also when the stale pid is a live,
// unrelated process, which is never signalled.
Test(reliability, master_sigkill_then_restart_over_stale_pid_file, .timeout = 50) {
    Options o;
    o.start = 3;
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(3), "want 3 workers");
    // One client mid-request: its worker finishes, then exits.
    auto workers = d.workers();
    int port = d.port;
    auto t0 = Clock::now();
    D_ASSERT(d, d.signal(SIGKILL), "kill -KILL master failed");
    int st = wait_exit(d.pid, 5s);
    bool gone = wait_until([&] {
        return std::all_of(workers.begin(), workers.end(), [](pid_t w) { return is_gone(w); });
    }, 5s);
    long gone_ms = ms_since(t0);
    bool free_port = wait_until([&] { return refused(port) && port_free(port); }, 2s);
    D_ASSERT(d, st == 128 + SIGKILL, "master status %d", st);
    D_ASSERT(d, gone, "workers %s outlived the master by 5 s", join(workers).c_str());
    D_ASSERT(d, free_port, "port %d still taken after the master's death", port);
    D_ASSERT(d, file_exists(d.pid_file), "the killed master left no pid file (the test needs a stale one)");

    // Restart over the stale pid file (its pid is dead).
    std::string first_log = d.log;
    d.log = d.path("daemon2.log");
    auto r0 = Clock::now();
    D_ASSERT(d, d.start(), "restart over a stale pid file failed");
    long restart_ms = ms_since(r0);
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "restarted daemon does not serve: %s", r.error.c_str());
    D_ASSERT(d, d.signal(SIGKILL) && wait_exit(d.pid, 5s) == 128 + SIGKILL, "second kill failed");
    wait_until([&] { return d.workers().empty(); }, 5s);

    // The stale pid file now names a live, unrelated process.
    pid_t stranger = spawn({"/bin/sleep", "60"}, d.path("sleep.out"));
    D_ASSERT(d, stranger > 0, "could not start sleep");
    write_file(d.pid_file, std::to_string(stranger) + "\n");
    RunResult sig = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, sig.status == 1 && contains(sig.err, "stale"),
             "-s reload with a stale pid file naming a live process: exit %d, '%s'", sig.status, sig.err.c_str());
    d.log = d.path("daemon3.log");
    D_ASSERT(d, d.start(), "start over a pid file naming a live unrelated process failed");
    r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "third start does not serve: %s", r.error.c_str());
    D_ASSERT(d, std::atol(read_file(d.pid_file).c_str()) == d.pid, "pid file does not name the new master");
    D_ASSERT(d, d.signal(SIGTERM) && wait_exit(d.pid, 5s) == 0, "TERM did not stop the third master");
    bool stranger_alive = !is_gone(stranger);
    std::string state = proc_status_field(stranger, "State");
    ::kill(stranger, SIGKILL);
    wait_exit(stranger, 2s);
    cr_log_info("master SIGKILL: workers gone in %ld ms, port free; restart over the stale pid file in %ld ms; "
                "a pid file naming live pid %d: -s reload refused (exit %d), start succeeded, pid %d left alone (%s)",
                gone_ms, restart_ms, stranger, sig.status, stranger, state.c_str());
    D_ASSERT(d, stranger_alive && contains(state, "S"), "the unrelated process %d was signalled (state '%s')", stranger,
             state.c_str());
    std::string all = read_file(first_log) + d.log_text() + read_file(d.path("daemon2.log"));
    std::string bad = bad_log_lines(all, {"exited on signal 15"});
    cr_assert(bad.empty(), "unexpected crash lines:\n%s", bad.c_str());
    NO_SANITIZER_REPORTS();
}

// 5, shortened: 6 slowloris connections against workers.max = 4 for 5 s;
// a normal client is served within 2 s throughout.  30 s and slowhttptest
// are in make stress.
Test(reliability, slowloris_more_than_max_workers_normal_client_served, .timeout = 40) {
    scenario_slowloris(5, 6, 4);
}

// 6: oversized input gets the right 4xx, the connection is closed, and the
// worker's memory stays bounded.
Test(reliability, oversized_input_4xx_closed_memory_bounded, .timeout = 40) {
    Options o{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(1), "want 1 worker");
    pid_t w = d.workers()[0];
    http_get(d.port, "/x.txt");
    long hwm0 = status_kb(w, "VmHWM");

    std::string many;
    for (int i = 0; i < 10000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    const size_t gib = size_t(1) << 30;
    struct Probe {
        const char* what;
        std::string head;
        size_t body;
        std::vector<int> want;
    };
    std::vector<Probe> probes = {
        {"20 KiB request line", "GET /" + std::string(20 << 10, 'a') + " HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, {414}},
        {"64 KiB header", "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: " + std::string(64 << 10, 'b') + "\r\n\r\n",
         0, {431}},
        {"10,000 headers", "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n" + many + "\r\n", 0, {431}},
        {"1 GiB announced body (GET)",
         "GET /x.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(gib) + "\r\n\r\n", 32u << 20,
         {413}},
        {"1 GiB announced body (POST)",
         "POST /x.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(gib) + "\r\n\r\n", 32u << 20,
         {405, 413}},
    };
    std::string report, wrong;
    for (const auto& p : probes) {
        size_t sent = 0;
        auto t0 = Clock::now();
        Response r = send_oversized(d.port, p.head, p.body, 3s, sent);
        long ms = ms_since(t0);
        bool right = r.ok && std::find(p.want.begin(), p.want.end(), r.status) != p.want.end();
        report += format(" %s: %s, %zu body bytes taken, %ld ms;", p.what,
                         r.ok ? r.status_line.c_str() : r.error.c_str(), sent, ms);
        if (!right)
            wrong += format("\n  %s: got %s, want %d%s and the connection closed", p.what,
                            r.ok ? r.status_line.c_str() : r.error.c_str(), p.want[0],
                            p.want.size() > 1 ? " (or 413)" : "");
    }
    long hwm1 = status_kb(w, "VmHWM");
    bool same_worker = !is_gone(w) && d.workers().size() == 1 && d.workers()[0] == w;
    Response after = http_get(d.port, "/x.txt");
    cr_log_info("oversized input:%s worker VmHWM %ld -> %ld kB", report.c_str(), hwm0, hwm1);
    D_ASSERT(d, same_worker, "the worker %d died or was replaced", w);
    D_ASSERT(d, hwm1 - hwm0 < 8192, "worker peak memory grew by %ld kB (%ld -> %ld)", hwm1 - hwm0, hwm0, hwm1);
    D_ASSERT(d, after.ok && after.status == 200, "GET after the probes: %s", after.error.c_str());
    D_ASSERT(d, wrong.empty(), "wrong answers:%s", wrong.c_str());
    REL_LOG_CLEAN(d);
}

// 7: descriptor exhaustion.  The daemon starts with RLIMIT_NOFILE 32:32
// (soft and hard, so it cannot raise it) and says so; then each worker's
// soft limit is lowered to the descriptors it holds, so accept() fails with
// EMFILE, while more connections than descriptors wait.  No busy loop (CPU of
// every preforkd process below 10%), one log line per worker, and a waiting
// request is served as soon as descriptors are available again.
Test(reliability, emfile_no_busy_loop_and_recovers, .timeout = 90) {
    const std::string prlimit_bin = "/usr/bin/prlimit";
    if (access(prlimit_bin.c_str(), X_OK) != 0) cr_skip("prlimit (util-linux) is not installed");
    Options o{.start = 2, .min_spare = 1, .max_spare = 2, .max = 2};
    // Workers stay root (written explicitly) so that this test, without
    // CAP_SYS_RESOURCE in a container, may still change their limits.
    o.extra = "user = \"root\";\n";
    Daemon d = Daemon::prepare(o);
    // Parking off: the count of sockets below is a worker's listener and
    // channel, without the parker's two queues.
    d.write_config_text(config_with(o, "header_timeout = 2; parking = false;"));
    const int limit = 32;
    D_ASSERT(d, start_with(d, {prlimit_bin, "--nofile=" + std::to_string(limit) + ":" + std::to_string(limit), "--",
                               daemon_binary(), "-f", "-c", d.conf}),
             "daemon did not start under RLIMIT_NOFILE %d", limit);
    D_ASSERT(d, d.wait_log("RLIMIT_NOFILE " + std::to_string(limit) + " is below").has_value(),
             "no warning that RLIMIT_NOFILE %d is too low for the configuration", limit);
    D_ASSERT(d, d.wait_workers(2, 30s), "want 2 workers");
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "not serving under RLIMIT_NOFILE %d: %s", limit, r.error.c_str());

    // Exhaust: each worker may open no descriptor beyond those it holds when
    // idle (its two sockets are the listener and the master's channel).
    // Readiness, not time: on a loaded machine (ASan, another test run beside
    // this one) a worker may take many seconds to finish starting or to close
    // the connection it served, so the bound is generous, and the two workers
    // are whichever two are idle then.
    auto sockets = [](pid_t w) {
        std::string links = fd_links(w);
        size_t n = 0;
        for (size_t at = 0; (at = links.find("socket:", at)) != std::string::npos; ++at) ++n;
        return n;
    };
    std::vector<pid_t> workers;
    bool idle_now = wait_until([&] {
        workers = d.workers();
        return workers.size() == 2 &&
               std::all_of(workers.begin(), workers.end(), [&](pid_t w) { return sockets(w) == 2; });
    }, 30s);
    std::string held;
    for (pid_t w : workers) held += format(" [%d: %s]", w, fd_links(w).c_str());
    D_ASSERT(d, idle_now, "workers not idle within 30 s:%s", held.c_str());
    std::map<pid_t, rlimit> saved;
    std::string lowered;
    for (pid_t w : workers) {
        rlimit old{};
        D_ASSERT(d, prlimit(w, RLIMIT_NOFILE, nullptr, &old) == 0, "prlimit(%d) failed: %s", w, strerror(errno));
        saved[w] = old;
        auto fds = open_fds(w);
        rlim_t lowest_free = 0;
        while (std::find(fds.begin(), fds.end(), static_cast<int>(lowest_free)) != fds.end()) ++lowest_free;
        // The soft limit only: a worker never raises its own, and raising it
        // back needs no privilege.
        rlimit low{lowest_free, old.rlim_max};
        D_ASSERT(d, prlimit(w, RLIMIT_NOFILE, &low, nullptr) == 0, "lowering the limit of %d failed: %s", w,
                 strerror(errno));
        lowered += format(" %d: %zu fds, limit %lu;", w, fds.size(), static_cast<unsigned long>(lowest_free));
    }
    // A worker asleep in accept() reserved the descriptor for its next
    // connection before the limit came down, so each worker takes one more
    // connection (its answer may be a 500: opening the file needs a
    // descriptor) before its accept() runs into EMFILE.
    for (size_t i = 0; i < workers.size(); ++i) {
        int prime = connect_tcp(d.port);
        std::string buffer;
        Response answer = prime >= 0 && send_all(prime, request("GET", "/x.txt?prime", false))
                              ? read_response(prime, buffer, false, 5s)
                              : Response{};
        if (prime >= 0) ::close(prime);
        D_ASSERT(d, answer.ok, "connection %zu before EMFILE: no answer: %s", i, answer.error.c_str());
    }
    // The waiting request first, then more idle connections than descriptors.
    int waiting = connect_tcp(d.port);
    D_ASSERT(d, waiting >= 0 && send_all(waiting, request("GET", "/x.txt?waiting", false)), "waiting request failed");
    std::vector<int> idle;
    for (int i = 0; i < limit + 8; ++i) {
        int fd = connect_tcp(d.port);
        if (fd >= 0) idle.push_back(fd);
    }
    D_ASSERT(d, d.wait_log("Too many open files; pausing accepts").has_value(), "no EMFILE back-off line");
    // CPU over 2 s, for every preforkd process.
    std::vector<pid_t> procs = workers;
    procs.push_back(d.pid);
    std::map<pid_t, long> t_before;
    for (pid_t p : procs) t_before[p] = cpu_ticks(p);
    auto c0 = Clock::now();
    nap(2s);
    double secs = ms_since(c0) / 1000.0;
    std::string cpu_text;
    double worst = 0;
    for (pid_t p : procs) {
        double pct = 100.0 * (cpu_ticks(p) - t_before[p]) / (secs * sysconf(_SC_CLK_TCK));
        worst = std::max(worst, pct);
        cpu_text += format(" %d: %.1f%%;", p, pct);
    }
    bool still_waiting = !recv_some(waiting, 0ms).has_value();
    size_t emfile_lines = d.count_log("pausing accepts");

    // Descriptors free up again: the waiting request is served by itself.
    for (pid_t w : workers) prlimit(w, RLIMIT_NOFILE, &saved[w], nullptr);
    auto s0 = Clock::now();
    std::string buffer;
    Response served = read_response(waiting, buffer, false, 5s);
    long served_ms = ms_since(s0);
    ::close(waiting);
    for (int fd : idle) ::close(fd);
    Response after = http_get(d.port, "/x.txt");
    cr_log_info("EMFILE: started under RLIMIT_NOFILE %d:%d (warned);%s %zu idle connections + 1 waiting; CPU over "
                "%.1f s:%s %zu back-off lines; waiting request served %ld ms after descriptors were available",
                limit, limit, lowered.c_str(), idle.size(), secs, cpu_text.c_str(), emfile_lines, served_ms);
    D_ASSERT(d, worst < 10.0, "busy loop under EMFILE: CPU%s", cpu_text.c_str());
    D_ASSERT(d, still_waiting, "the waiting request was answered while descriptors were exhausted");
    D_ASSERT(d, emfile_lines >= 1 && emfile_lines <= workers.size(), "%zu EMFILE lines for %zu workers in 2 s",
             emfile_lines, workers.size());
    D_ASSERT(d, served.ok && served.status == 200 && served_ms < 1000,
             "waiting request not served within 1 s of recovery: %s (%ld ms)", served.error.c_str(), served_ms);
    D_ASSERT(d, after.ok && after.status == 200, "not serving after recovery: %s", after.error.c_str());
    REL_LOG_CLEAN(d);
}

// 8: the access log on a full file system: every request still 200, one
// diagnostic per worker, lines resume (and are said to) once space is freed.
Test(reliability, full_disk_access_log_requests_still_200, .timeout = 40) {
    if (geteuid() != 0) cr_skip("mounting a tmpfs needs root");
    Options o{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1,
              .access_log = "logs/access.log"};
    Daemon d = Daemon::prepare(o);
    std::string logs = d.path("logs");
    make_dir(logs);
    // A private mount namespace: the tmpfs disappears with this test's
    // processes whatever happens.
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        cr_skip("no private mount namespace here: %s", strerror(errno));
    if (mount("tmpfs", logs.c_str(), "tmpfs", 0, "size=64k,mode=0755") != 0)
        cr_skip("mount -t tmpfs -o size=64k failed: %s", strerror(errno));
    g_mounts.push_back(logs);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    std::string access = d.path("logs/access.log");

    int ok = 0, total = 0;
    std::string first_bad;
    auto fetch = [&](const std::string& tag, int n) {
        for (int i = 0; i < n; ++i, ++total) {
            Response r = http_get(d.port, "/x.txt?" + tag + std::to_string(i));
            if (r.ok && r.status == 200) ++ok;
            else if (first_bad.empty()) first_bad = r.ok ? r.status_line : r.error;
        }
    };
    fetch("before", 5);
    D_ASSERT(d, wait_until([&] { return lines_of(read_file(access)).size() >= 5; }, 3s), "access log not written");
    // Fill the file system.
    std::string filler = logs + "/filler";
    int f = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::string block(4096, 'f');
    size_t filled = 0;
    for (int i = 0; i < 1000; ++i) {
        ssize_t n = ::write(f, block.data(), block.size());
        if (n <= 0) break;
        filled += static_cast<size_t>(n);
    }
    for (int i = 0; i < 4096; ++i) {   // the last partial page
        if (::write(f, "f", 1) != 1) break;
        ++filled;
    }
    ::close(f);
    size_t before_full = lines_of(read_file(access)).size();
    fetch("full", 50);
    bool said = d.wait_log("access log lines are being lost").has_value();
    size_t lost_lines = d.count_log("access log lines are being lost");
    size_t during = lines_of(read_file(access)).size();
    std::string log_during = read_file(access);
    // Free the space.
    ::unlink(filler.c_str());
    fetch("after", 20);
    bool resumed = wait_until([&] { return contains(read_file(access), "?after19 "); }, 3s);
    bool recovered = d.wait_log("is writable again").has_value();
    size_t partial = 0;
    std::string malformed;
    for (const auto& l : lines_of(read_file(access))) {
        size_t records = 0;
        for (size_t at = 0; (at = l.find("127.0.0.1 - - [", at)) != std::string::npos; ++at) ++records;
        if (records != 1 || !contains(l, "\" 200 ") || l.back() != '"') {   // a combined line ends with its User-Agent
            ++partial;
            malformed += "\n  | " + l;
        }
    }
    cr_log_info("disk full: tmpfs 64k, %zu filler bytes; %d of %d requests 200; %zu lines before, %zu while full "
                "(of 50 requests), %zu malformed lines; %zu 'being lost' lines; resumed %s, recovery line %s",
                filled, ok, total, before_full, during - before_full, partial, lost_lines, resumed ? "yes" : "no",
                recovered ? "yes" : "no");
    D_ASSERT(d, ok == total, "%d of %d requests failed; first: %s", total - ok, total, first_bad.c_str());
    D_ASSERT(d, said && lost_lines == 1, "want one 'access log lines are being lost' line, have %zu", lost_lines);
    D_ASSERT(d, resumed, "access log lines did not resume after the space was freed");
    D_ASSERT(d, recovered, "no 'is writable again' line");
    // A line the full disk cut short must not be glued to the next one.
    D_ASSERT(d, partial == 0, "%zu malformed access log lines (a short write(2) on the full disk):%s", partial,
             malformed.c_str());
    D_ASSERT(d, d.signal(SIGTERM) && wait_exit(d.pid, 5s) == 0, "TERM did not stop the master");
    REL_LOG_CLEAN(d, "exited on signal 15");
}

// 10, shortened: 100 downloads of 32 MiB reset after 64 KiB.  1,000 in make stress.
Test(reliability, aborted_downloads_no_worker_death_no_fd_leak, .timeout = 40) {
    scenario_client_aborts(100, 20s);
}

// 11: QUIT with a 1 MiB and a 64 MiB slow download in flight: new connections
// refused at once, the short one completes, the long one is cut at
// graceful_timeout, exit 0.  TERM with a download in flight exits within 2 s.
Test(reliability, graceful_stop_with_downloads_in_flight, .timeout = 50) {
    Options o{.start = 3, .min_spare = 1, .max_spare = 4, .max = 4, .graceful_timeout = 3};
    // The downloads must keep workers busy (with parking the parker would
    // finish them): this is about the workers of a stopping pool.
    o.http_extra = "parking = false;";
    Daemon d = Daemon::prepare(o);
    make_big_file(d.path("www/small.bin"), 1u << 20);
    make_big_file(d.path("www/huge.bin"), 64u << 20, true);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(3), "want 3 workers");
    int small = connect_tcp(d.port), huge = connect_tcp(d.port);
    D_ASSERT(d, small >= 0 && huge >= 0, "connect failed");
    send_all(small, request("GET", "/small.bin", false));
    send_all(huge, request("GET", "/huge.bin", false));
    bool eof = false;
    size_t small_got = drain(small, 16u << 10, 5s, eof);
    size_t huge_got = drain(huge, 16u << 10, 5s, eof);
    pid_t huge_worker = -1;
    wait_until([&] { return (huge_worker = worker_serving(d.pid, huge, d.port)) > 0; }, 3s);
    D_ASSERT(d, small_got > 0 && huge_got > 0 && huge_worker > 0, "downloads did not start");

    auto t0 = Clock::now();
    D_ASSERT(d, d.signal(SIGQUIT), "kill -QUIT failed");
    long refused_ms = -1;
    int accepted_meanwhile = 0;
    while (ms_since(t0) < 2000) {
        if (refused(d.port)) {
            refused_ms = ms_since(t0);
            break;
        }
        ++accepted_meanwhile;
        nap(5ms);
    }
    // Both downloads read slowly: 32 KiB every 15 ms (about 2 MiB/s; the
    // 64 MiB one would need half a minute).
    std::atomic<size_t> small_total{small_got}, huge_total{huge_got};
    std::atomic<long> small_end{-1}, huge_end{-1};
    std::atomic<bool> huge_eof{false};
    std::thread ts([&] {
        bool e;
        small_total += drain(small, 2u << 20, 15s, e, 15ms, 32u << 10);
        small_end = ms_since(t0);
    });
    std::thread th([&] {
        bool e;
        huge_total += drain(huge, 128u << 20, 20s, e, 15ms, 32u << 10);
        huge_eof = e;
        huge_end = ms_since(t0);
    });
    int st = wait_exit(d.pid, 10s);
    long exit_ms = ms_since(t0);
    ts.join();
    th.join();
    ::close(small);
    ::close(huge);
    cr_log_info("graceful stop: refused after %ld ms (%d connects before); 1 MiB download got %zu bytes by %ld ms; "
                "64 MiB download: %zu bytes, %s at %ld ms (the kernel's buffers drain after the cut); master exit %d "
                "after %ld ms (graceful_timeout 3 s)",
                refused_ms, accepted_meanwhile, small_total.load(), small_end.load(), huge_total.load(),
                huge_eof ? "EOF" : "no EOF", huge_end.load(), st, exit_ms);
    D_ASSERT(d, refused_ms >= 0 && refused_ms <= 500, "new connections not refused within 500 ms (%ld)", refused_ms);
    D_ASSERT(d, small_total >= (1u << 20) + 100 && small_total < (1u << 20) + 1000,
             "the 1 MiB download did not complete: %zu bytes", small_total.load());
    D_ASSERT(d, huge_eof && huge_total < (64u << 20), "the 64 MiB download was not cut: %zu bytes, %s",
             huge_total.load(), huge_eof ? "EOF" : "no EOF");
    D_ASSERT(d, st == 0, "master exit status %d after QUIT", st);
    D_ASSERT(d, exit_ms >= 2500 && exit_ms <= 4500, "master exited %ld ms after QUIT, want graceful_timeout (3 s)",
             exit_ms);
    D_ASSERT(d, d.count_log("still busy after graceful_timeout") == 1, "no graceful_timeout line");

    // TERM: a second daemon with a slow download in flight.
    Daemon t = Daemon::prepare(o);
    make_big_file(t.path("www/huge.bin"), 64u << 20, true);
    D_ASSERT(t, t.start(), "second daemon did not become ready");
    int slow = connect_tcp(t.port, 4096);
    send_all(slow, request("GET", "/huge.bin", false));
    drain(slow, 16u << 10, 5s, eof);
    auto k0 = Clock::now();
    D_ASSERT(t, t.signal(SIGTERM), "kill -TERM failed");
    int tst = wait_exit(t.pid, 5s);
    long term_ms = ms_since(k0);
    ::close(slow);
    cr_log_info("TERM with a download in flight: exit %d after %ld ms", tst, term_ms);
    D_ASSERT(t, tst == 0 && term_ms < 2000, "TERM: exit %d after %ld ms (want 0 within 2 s)", tst, term_ms);
    REL_LOG_CLEAN(t, "exited on signal 15");
    REL_LOG_CLEAN(d, format("worker %d exited on signal 9", huge_worker));
}

// 12: workers run with the configured uid/gid, no supplementary groups, no
// capabilities, no_new_privs set; a 0600 root-owned file gives 403.
Test(reliability, worker_privileges_dropped_completely, .timeout = 30) {
    if (geteuid() != 0) cr_skip("privilege dropping needs root");
    const passwd* pw = getpwnam("nobody");
    const group* gr = getgrnam("nogroup");
    if (pw == nullptr || gr == nullptr) cr_skip("no nobody/nogroup here");
    uid_t uid = pw->pw_uid;
    gid_t gid = gr->gr_gid;
    Options o;
    o.extra = "user = \"nobody\";\ngroup = \"nogroup\";\n";
    Daemon d = Daemon::prepare(o);
    write_file(d.path("www/secret.txt"), "root only\n", 0600);
    D_ASSERT(d, ::chown(d.path("www/secret.txt").c_str(), 0, 0) == 0, "chown failed");
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers");
    std::string problems, seen;
    std::string u = std::to_string(uid), g = std::to_string(gid);
    for (pid_t w : d.workers()) {
        auto field = [&](const char* k) { return proc_status_field(w, k); };
        std::string uids = field("Uid"), gids = field("Gid"), groups = field("Groups");
        seen += format(" worker %d: Uid %s, Gid %s, Groups '%s', CapEff %s, CapPrm %s, NoNewPrivs %s;", w,
                       uids.c_str(), gids.c_str(), groups.c_str(), field("CapEff").c_str(), field("CapPrm").c_str(),
                       field("NoNewPrivs").c_str());
        std::istringstream us(uids), gs(gids), grs(groups);
        for (std::string x; us >> x;)
            if (x != u) problems += format("\n  worker %d: Uid '%s', want %s everywhere", w, uids.c_str(), u.c_str());
        for (std::string x; gs >> x;)
            if (x != g) problems += format("\n  worker %d: Gid '%s', want %s everywhere", w, gids.c_str(), g.c_str());
        for (std::string x; grs >> x;)
            if (x != g) problems += format("\n  worker %d: supplementary group %s", w, x.c_str());
        for (const char* cap : {"CapEff", "CapPrm", "CapInh", "CapAmb"})
            if (field(cap) != "0000000000000000")
                problems += format("\n  worker %d: %s %s, want none", w, cap, field(cap).c_str());
        if (field("NoNewPrivs") != "1")
            problems += format("\n  worker %d: NoNewPrivs %s, want 1 (prctl(PR_SET_NO_NEW_PRIVS))", w,
                               field("NoNewPrivs").c_str());
    }
    Response secret = http_get(d.port, "/secret.txt");
    Response open = http_get(d.port, "/x.txt");
    cr_log_info("privileges:%s secret file: %s", seen.c_str(), secret.status_line.c_str());
    D_ASSERT(d, secret.ok && secret.status == 403, "0600 root file: %s %s, want 403", secret.status_line.c_str(),
             secret.error.c_str());
    D_ASSERT(d, open.ok && open.status == 200, "GET /x.txt: %s", open.error.c_str());
    D_ASSERT(d, problems.empty(), "workers keep privileges:%s", problems.c_str());
    REL_LOG_CLEAN(d);
}

// 13, shortened: 20,000 keep-alive requests and 5 reloads.  100,000 and 20
// are in make stress.
Test(reliability, leak_soak_short, .timeout = 50) {
    scenario_leak_soak(20000, 5, 30s);
}
