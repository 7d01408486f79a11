// test_parking.cpp - issue 11's numbers, for `make stress` (never part of
// make check): slow clients and an idle keep-alive crowd against
// workers.max = 64, with nginx as the reference where it is installed, and a
// reload under load with no retryable keep-alive close.  The scenario
// helpers are in numbers.hpp; figures go to the Criterion log ("[----]").
//
// Slow read (a client that does not read the response, pipelining two
// requests on each connection): the rest of each answer goes to the parker,
// which sends it as the client reads, so the test asserts availability as
// for the other two.
#include <criterion/criterion.h>

#include <algorithm>
#include <vector>

#include "numbers.hpp"

using namespace itest;
using namespace rel;
using namespace num;

TestSuite(parking_numbers, .init = setup, .fini = cleanup, .timeout = 200);

namespace {

// workers.max = 64 as in the issue, grown from a small pool.
Options pool64()
{
    return Options{.start = 8, .min_spare = 4, .max_spare = 16, .max = 64};
}

// A normal client's p99 latency beside an attack must stay below this.
// Measured one scenario at a time, as make stress runs this suite: 0-8 ms
// for preforkd in the runs logged so far.  Beside another scenario (-j2)
// slow read once reached 303 ms, and nginx 158 ms.
constexpr long kProbeP99Ms = 100;

// One slowhttptest attack of 1,000 connections for `seconds`, against
// preforkd and then (if installed) nginx, each with a probe every 100 ms.
// `must_stay_available`: assert that no probe failed, that slowhttptest saw
// the service available at every second, and that the probe's p99 stayed
// below kProbeP99Ms.
void slow_clients(const std::string& mode, int seconds, bool must_stay_available)
{
    if (access("/usr/bin/slowhttptest", X_OK) != 0) cr_skip("slowhttptest is not installed (Debian package slowhttptest)");
    Options o = pool64();
    Daemon d = Daemon::prepare(o);
    make_big_file(d.path("www/big.bin"), 4u << 20);
    d.write_config_text(config_with(o, ""));
    D_ASSERT(d, d.start(), "daemon did not become ready");

    auto attack = [&](const std::string& tag, int port) {
        Probe p;
        p.start(port);
        SlowResult s = run_slowhttptest(d, tag, port, mode, 1000, seconds);
        ProbeStats ps = p.finish();
        cr_log_info("slow clients %s, %s: 1000 connections, %d s: slowhttptest: %d seconds reported, %d unavailable, "
                    "at most %ld connections held; %s; probe every 100 ms: %ld probes, %ld failed, latency p50 %ld ms, "
                    "p99 %ld ms, max %ld ms%s%s",
                    mode.c_str(), tag.c_str(), seconds, s.rows, s.unavailable, s.max_connected, s.exit_line.c_str(),
                    ps.probes, ps.failed, ps.p50_ms, ps.p99_ms, ps.max_ms, ps.failed ? "; first failure " : "",
                    ps.first_failure.c_str());
        return std::make_pair(s, ps);
    };
    auto [s, ps] = attack("preforkd", d.port);
    pid_t parker = parker_of(d.pid);
    // The reference: nginx under the same attack.
    int nport = start_nginx(d);
    if (nport > 0) attack("nginx", nport);
    else cr_log_info("slow clients %s: nginx not installed or did not start; no reference", mode.c_str());

    D_ASSERT(d, s.finished, "slowhttptest did not finish:\n%s", s.output.c_str());
    D_ASSERT(d, s.rows >= 1, "slowhttptest wrote no CSV rows:\n%s", s.output.c_str());
    // slowhttptest ends early when the server has closed every attack
    // connection ("No open connections left"): a second of probes at least.
    D_ASSERT(d, ps.probes >= 10, "only %ld probes", ps.probes);
    if (must_stay_available) {
        D_ASSERT(d, ps.failed == 0, "%ld of %ld probes failed; first %s", ps.failed, ps.probes,
                 ps.first_failure.c_str());
        D_ASSERT(d, s.unavailable == 0, "slowhttptest: service unavailable in %d of %d seconds (first: %s)",
                 s.unavailable, s.rows, s.first_unavailable.c_str());
        D_ASSERT(d, ps.p99_ms < kProbeP99Ms, "a normal client's p99 was %ld ms (below %ld wanted; p50 %ld, max %ld)",
                 ps.p99_ms, kProbeP99Ms, ps.p50_ms, ps.max_ms);
        D_ASSERT(d, parker > 0 && parker == parker_of(d.pid), "the parker died or was replaced during the attack");
    }
    // Whatever the attack did, the service is back once it is over.
    D_ASSERT(d, wait_until([&] {
                 Response r = http_get(d.port, "/x.txt");
                 return r.ok && r.status == 200;
             }, 30s),
             "not serving after the attack");
    REL_LOG_CLEAN(d);
}

}  // namespace

Test(parking_numbers, slowloris_1000_connections) {
    slow_clients("-H", 30, true);
}

Test(parking_numbers, slow_body_1000_connections) {
    slow_clients("-B", 30, true);
}

Test(parking_numbers, slow_read_1000_connections) {
    slow_clients("-X", 30, true);
}

// 10,000 keep-alive connections, each sending a request every 5 s, plus wrk
// -t1 -c32; keepalive_timeout = 15 s.  Three rounds, each wrk alone and then
// wrk with a crowd started for it: the verdict is the median of the three
// rounds' ratios.  One round decides nothing here: wrk alone varied by up to
// a quarter from one run of this test to the next on an idle machine (its
// single ratio ranged 0.75-1.0 with the same binary), and alternating the
// two measurements keeps a drift of the machine from landing on one side.
Test(parking_numbers, idle_crowd_10000_plus_wrk, .timeout = 400) {
    if (access("/usr/bin/wrk", X_OK) != 0) cr_skip("wrk is not installed (Debian package wrk)");
    // The pool forked whole at start, so that wrk alone measures no growth.
    Options o{.start = 64, .min_spare = 4, .max_spare = 64, .max = 64};
    o.keepalive_timeout = 15;
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(64), "want 64 workers, have %zu", d.workers().size());
    const int crowd_n = 10000, wrk_seconds = 10, rounds = 3;

    run_wrk(d, d.port, 32, 2);   // warm-up, not measured
    std::vector<double> ratios;
    for (int round = 1; round <= rounds; ++round) {
        WrkResult alone = run_wrk(d, d.port, 32, wrk_seconds);
        Crowd crowd;
        auto t0 = Clock::now();
        crowd.start(d.port, crowd_n, 5s);
        // Every connection up and answered at least once (a full period).
        bool up = wait_until([&] { return crowd.established >= crowd_n && crowd.answered >= crowd_n; }, 60s);
        long ramp_ms = ms_since(t0);
        WrkResult with = run_wrk(d, d.port, 32, wrk_seconds);
        pid_t parker = parker_of(d.pid);
        std::vector<pid_t> workers = d.workers();
        Mem master = smaps({d.pid}), park = smaps({parker}), work = smaps(workers);
        int parked_fds = fd_count(parker);
        long established = crowd.established.load(), answered = crowd.answered.load();
        CrowdStats c = crowd.finish();
        double ratio = alone.rps > 0 ? with.rps / alone.rps : 0;
        ratios.push_back(ratio);
        cr_log_info("idle crowd, round %d: %d keep-alive connections, a request each every 5 s, up in %ld ms; %ld "
                    "connected, %ld connect failures, %ld requests, %ld answered 200, %ld non-200, %ld late (> 5 s), "
                    "%ld closed by the server, slowest answer %ld ms%s%s",
                    round, crowd_n, ramp_ms, c.connected, c.connect_failed, c.requests, c.ok, c.non200, c.late,
                    c.closed_by_server, c.longest_ms, c.first_failure.empty() ? "" : "; first failure: ",
                    c.first_failure.c_str());
        cr_log_info("idle crowd, round %d: wrk -t1 -c32 %d s: alone %s; with the crowd %s; ratio %.3f", round,
                    wrk_seconds, alone.summary.c_str(), with.summary.c_str(), ratio);
        cr_log_info("idle crowd, round %d, memory (smaps_rollup): master RSS %ld kB PSS %ld kB; parker RSS %ld kB "
                    "PSS %ld kB (%d descriptors); %d workers RSS %ld kB PSS %ld kB; total PSS %ld kB",
                    round, master.rss_kb, master.pss_kb, park.rss_kb, park.pss_kb, parked_fds, work.procs,
                    work.rss_kb, work.pss_kb, master.pss_kb + park.pss_kb + work.pss_kb);
        D_ASSERT(d, up, "round %d: the crowd did not get going in 60 s: %ld established, %ld answered", round,
                 established, answered);
        D_ASSERT(d, c.connect_failed == 0 && c.non200 == 0 && c.late == 0,
                 "round %d, crowd: %ld connect failures, %ld non-200, %ld late; first: %s", round, c.connect_failed,
                 c.non200, c.late, c.first_failure.c_str());
        D_ASSERT(d, c.closed_by_server == 0,
                 "round %d: %ld crowd connections closed by the server before keepalive_timeout; first: %s", round,
                 c.closed_by_server, c.first_failure.c_str());
        D_ASSERT(d, alone.rps > 0 && with.rps > 0, "round %d: wrk gave no result", round);
        D_ASSERT(d, alone.errors == 0 && with.errors == 0, "round %d, wrk errors: alone %ld, with the crowd %ld",
                 round, alone.errors, with.errors);
    }
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted[sorted.size() / 2];
    cr_log_info("idle crowd: wrk with the crowd / alone, by round: %.3f %.3f %.3f; median %.3f", ratios[0], ratios[1],
                ratios[2], median);
    D_ASSERT(d, median >= 0.9, "wrk with the crowd at a median %.3f of its throughput alone (rounds %.3f %.3f %.3f)",
             median, ratios[0], ratios[1], ratios[2]);
    REL_LOG_CLEAN(d);
}

// HUP every 2 s for 15 s under load: no failed request, no non-200, and no
// keep-alive connection closed between requests (the old generation's idle
// connections go to the parker and the next request is answered by the new
// generation).
Test(parking_numbers, reload_under_load_no_keepalive_retries, .timeout = 90) {
    scenario_reload_under_load(15, 2000, 0, true);
}
