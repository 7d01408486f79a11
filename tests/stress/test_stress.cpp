// test_stress.cpp - issue 6: the long reliability scenarios, for `make stress`
// (never part of make check).  Their quick versions are in
// tests/integration/test_reliability.cpp; the scenarios themselves in
// reliability.hpp.  The 5-minute libFuzzer run of the request parser
// (scenario 14) is the Makefile's `fuzz` target, which `make stress` runs
// after this binary.
//
// Figures of each run are logged as "[----] ..." lines.
#include <criterion/criterion.h>

#include "reliability.hpp"

using namespace itest;
using namespace rel;

TestSuite(stress, .init = setup, .fini = cleanup, .timeout = 150);

// 1 + 9: 15 s of load (half keep-alive, half fresh connections), HUP every
// 2 s, the access log renamed and USR1 every 3 s.
Test(stress, reload_under_load_15s_with_log_rotation, .timeout = 90) {
    scenario_reload_under_load(15, 2000, 3000);
}

// 3: twenty SIGKILLs in a row: the back-off message, no fork storm, and the
// pool serves again once the announced back-off has passed.
Test(stress, twenty_worker_kills_back_off, .timeout = 120) {
    scenario_kill_loop(20, 60s);
}

// 5: 30 s of slowloris with more connections than workers.max.
Test(stress, slowloris_30s, .timeout = 90) {
    scenario_slowloris(30, 6, 4);
}

// 5: slowhttptest's slowloris, slow body and slow read attacks.
Test(stress, slowhttptest_slow_headers, .timeout = 90) {
    scenario_slowhttptest("-H", 20);
}

Test(stress, slowhttptest_slow_body, .timeout = 90) {
    scenario_slowhttptest("-B", 20);
}

Test(stress, slowhttptest_slow_read, .timeout = 90) {
    scenario_slowhttptest("-X", 20);
}

// 10: 1,000 downloads of a 32 MiB file reset after 64 KiB.
Test(stress, thousand_aborted_downloads, .timeout = 150) {
    scenario_client_aborts(1000, 120s);
}

// 13: 100,000 keep-alive requests and 20 reloads.
Test(stress, leak_soak_100k_requests_20_reloads, .timeout = 150) {
    scenario_leak_soak(100000, 20, 120s);
}
