// test_pool.cpp - the worker pool as an administrator sees it in ps(1):
// `start` workers at boot, growth under load up to `max` (never above),
// shrinking back to `max_spare` idle workers, a killed worker replaced.
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "harness.hpp"

using namespace itest;

TestSuite(pool, .init = setup, .fini = cleanup, .timeout = 60);

Test(pool, worker_count_after_start_equals_start, .timeout = 30) {
    Options o{.start = 3, .min_spare = 1, .max_spare = 3};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    auto workers = d.workers();
    D_ASSERT(d, workers.size() == 3, "after 'ready:' the master has %zu workers (%s), want 3",
             workers.size(), join(workers).c_str());
    D_ASSERT(d, d.count_log("ready: generation 1, 3 workers") == 1,
             "want one log line 'ready: generation 1, 3 workers'");
    NO_SANITIZER_REPORTS();
}

Test(pool, process_titles, .timeout = 30) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    std::string master = cmdline_of(d.pid);
    D_ASSERT(d, master.rfind("preforkd: master process", 0) == 0,
             "master cmdline is '%s', want 'preforkd: master process ...'", master.c_str());
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    for (pid_t w : d.workers()) {
        std::string title = cmdline_of(w);
        D_ASSERT(d, title.rfind("preforkd: worker process", 0) == 0,
                 "worker %d cmdline is '%s', want 'preforkd: worker process'", w, title.c_str());
    }
    NO_SANITIZER_REPORTS();
}

// DESIGN 1: while short of idle workers the pool spawns 1, 2, 4 ... up to
// 32 a second.  With min_spare = 2 it once grew by two a second at most,
// because each tick spawned only min_spare - idle.  40 slow clients keep
// every new worker busy, so the rate must reach 16 in one second: the log
// line names each doubled step.
Test(pool, busy_pool_spawns_at_a_doubling_rate, .timeout = 90) {
    // Parking off: slow clients must hold their workers here (with parking
    // on they do not, which test_parking.cpp shows).
    Options o{.start = 4, .min_spare = 2, .max_spare = 4, .max = 64, .http_extra = "parking = false;"};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(4), "want 4 workers at start, have %s", join(d.workers()).c_str());
    std::vector<int> clients;
    for (int i = 0; i < 40; ++i) {
        int fd = connect_tcp(d.port);
        D_ASSERT(d, fd >= 0, "connect %d failed", i);
        D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.1\r\nHost: local"), "send %d failed", i);
        clients.push_back(fd);
    }
    auto eight = d.wait_log("pool: spawning 8 workers", 60s);
    D_ASSERT(d, eight.has_value(), "the spawn rate never reached 8 a second");
    auto sixteen = d.wait_log("pool: spawning 16 workers", 60s);
    D_ASSERT(d, sixteen.has_value(), "the spawn rate never reached 16 a second");
    bool grown = wait_until([&] { return d.workers().size() >= 4 + 1 + 2 + 4 + 8 + 16; }, 30s);
    D_ASSERT(d, grown, "after a 16-worker step the pool has %zu workers", d.workers().size());
    for (int fd : clients) close(fd);
    NO_SANITIZER_REPORTS();
}

Test(pool, grows_to_max_under_slow_clients_then_shrinks, .timeout = 60) {
    Options o{.start = 2, .min_spare = 1, .max_spare = 3, .max = 6, .http_extra = "parking = false;"};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers at start, have %s", join(d.workers()).c_str());

    // 8 clients that each send half a request and hold it: each occupies a
    // worker; two more than `max` wait in the listen queue.
    std::vector<int> clients;
    for (int i = 0; i < 8; ++i) {
        int fd = connect_tcp(d.port);
        D_ASSERT(d, fd >= 0, "connect %d failed", i);
        D_ASSERT(d, send_all(fd, "GET /x.txt HTTP/1.1\r\nHost: local"), "send %d failed", i);
        clients.push_back(fd);
    }
    size_t most = 0;
    auto sample = [&] {
        size_t n = d.workers().size();
        most = std::max(most, n);
        return n;
    };
    bool grew = wait_until([&] { return sample() == 6; }, 15s);
    D_ASSERT(d, grew, "pool did not grow to max=6 under 8 slow clients: %zu workers (%s)",
             d.workers().size(), join(d.workers()).c_str());
    // Keep watching for a while: it must never go above max.
    wait_until([&] { return sample() > 6; }, 1500ms);
    D_ASSERT(d, most <= 6, "pool went above max=6: saw %zu workers", most);

    for (int fd : clients) close(fd);
    auto closed_at = std::chrono::steady_clock::now();
    bool shrank = wait_until([&] { return sample() <= 3; }, 15s);
    D_ASSERT(d, shrank, "pool did not shrink to max_spare=3 after the clients left: %zu workers",
             d.workers().size());
    auto took = std::chrono::steady_clock::now() - closed_at;
    D_ASSERT(d, took >= 1s,
             "6 -> 3 idle workers happened in %lld ms; retiring is one idle worker per second",
             static_cast<long long>(std::chrono::duration_cast<Duration>(took).count()));
    D_ASSERT(d, most <= 6, "pool went above max=6: saw %zu workers", most);
    // It settles at max_spare, not below min_spare.
    wait_until([&] { return sample() < 3; }, 1500ms);
    size_t settled = d.workers().size();
    D_ASSERT(d, settled == 3, "pool settled at %zu idle workers, want max_spare=3", settled);
    // And it still serves.
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after shrinking: %s %s", r.error.c_str(),
             r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(pool, killed_worker_is_replaced, .timeout = 30) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    auto before = d.workers();
    pid_t victim = before.front();
    D_ASSERT(d, kill(victim, SIGKILL) == 0, "kill -9 %d failed", victim);

    std::string line = "worker " + std::to_string(victim) + " exited on signal 9";
    D_ASSERT(d, d.wait_log(line).has_value(), "no log line '%s'", line.c_str());
    bool replaced = wait_until([&] {
        auto now = d.workers();
        return now.size() == 2 && std::find(now.begin(), now.end(), victim) == now.end();
    });
    D_ASSERT(d, replaced, "killed worker %d not replaced: workers now %s", victim,
             join(d.workers()).c_str());
    D_ASSERT(d, !is_gone(d.pid), "master died");
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the replacement: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(pool, watchdog_kills_a_hung_worker_and_names_its_request, .timeout = 40) {
    Options o;
    o.watchdog_timeout = 1;
    // A worker must be busy with the download when it hangs; with parking
    // the parker would finish the download instead.
    o.http_extra = "parking = false;";
    Daemon d = Daemon::prepare(o);
    write_file(d.path("www/big.bin"), std::string(16u << 20, 'w'));
    D_ASSERT(d, d.start(), "daemon did not become ready");

    // A download in progress, then the worker serving it hangs (SIGSTOP).
    int fd = connect_tcp(d.port, 4096);
    D_ASSERT(d, fd >= 0 && send_all(fd, request("GET", "/big.bin")), "request failed");
    auto first = recv_some(fd, 5s);
    D_ASSERT(d, first && !first->empty(), "no response to GET /big.bin");
    // Until the worker is stopped, the download must make progress: a
    // worker the client leaves blocked for watchdog_timeout is killed by the
    // watchdog before the test could stop it (seen on a loaded machine).
    pid_t hung = -1;
    wait_until([&] {
        char sink[16384];
        (void)::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        return (hung = worker_serving(d.pid, fd, d.port)) > 0;
    });
    D_ASSERT(d, hung > 0, "cannot find the worker serving our connection among %s",
             join(d.workers()).c_str());
    D_ASSERT(d, kill(hung, SIGSTOP) == 0, "kill -STOP %d failed", hung);

    std::string needle = "watchdog: worker " + std::to_string(hung) + " made no progress for";
    auto line = d.wait_log(needle);
    D_ASSERT(d, line.has_value(), "no log line '%s ...'", needle.c_str());
    D_ASSERT(d, line->find("on \"GET /big.bin HTTP/1.1\"; killing it") != std::string::npos,
             "watchdog line does not name the stuck request: '%s'", line->c_str());
    std::string exited = "worker " + std::to_string(hung) + " exited on signal";
    D_ASSERT(d, d.wait_log(exited).has_value(), "no log line '%s ...'", exited.c_str());
    D_ASSERT(d, wait_until([&] { return is_gone(hung); }), "hung worker %d still alive", hung);
    close(fd);
    bool replaced = wait_until([&] { return d.workers().size() >= 2; });
    D_ASSERT(d, replaced, "pool not restored after the watchdog: %s", join(d.workers()).c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the watchdog: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(pool, workers_exit_when_the_master_is_killed, .timeout = 30) {
    // If the master dies without a chance to clean up (kill -9, the OOM
    // killer), its workers must not live on as orphans holding the port.
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    auto workers = d.workers();
    D_ASSERT(d, d.signal(SIGKILL), "kill -9 master failed");
    D_ASSERT(d, wait_exit(d.pid, 5s) == 128 + SIGKILL, "master did not die of SIGKILL");
    bool gone = wait_until([&] {
        return std::all_of(workers.begin(), workers.end(), [](pid_t w) { return is_gone(w); });
    }, 5s);
    std::vector<pid_t> alive;
    for (pid_t w : workers) {
        if (!is_gone(w)) alive.push_back(w);
    }
    D_ASSERT(d, gone, "workers %s still alive 5 s after the master was killed",
             join(alive).c_str());
    NO_SANITIZER_REPORTS();
}

// workers.cpu_scheduling: every worker runs under the configured policy, and
// a reload changes it for the new generation.
Test(pool, workers_run_under_the_configured_cpu_scheduling, .timeout = 40) {
    auto policies = [](const std::vector<pid_t>& pids) {
        std::string text;
        for (pid_t p : pids) {
            int policy = sched_getscheduler(p);
            text += policy == SCHED_BATCH ? " batch" : policy == SCHED_OTHER ? " other" : " ?";
        }
        return text;
    };
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers");
    std::string before = policies(d.workers());
    D_ASSERT(d, before == " batch batch", "default policy of the workers:%s, want batch", before.c_str());

    Options o = d.opts;
    o.workers_extra = "cpu_scheduling = \"other\";";
    d.write_config(o);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers after the reload");
    std::string after = policies(d.workers());
    D_ASSERT(d, after == " other other", "policy after reloading with \"other\":%s", after.c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the reload: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}
