// The connection loop's parking policy for idle keep-alive connections: how
// long a client has for its next request before its worker gives it to the
// parker, by how many workers are idle.
#include <criterion/criterion.h>

#include "preforkd/connection.hpp"

using namespace preforkd::connection;

// A busy client (its next request 10 ms or more after its answer on a
// loaded machine) must not be parked and handed back on every request
// while most of min_spare is still idle: c=256 against 300 workers with
// min_spare 64 leaves 44 idle.
Test(park_grace, a_pool_a_little_short_keeps_its_busy_clients)
{
    cr_assert_eq(park_grace_ms(64, 64), kParkGraceMaxMs);
    cr_assert_geq(park_grace_ms(44, 64), 100, "44 of 64 idle: %ld ms", long(park_grace_ms(44, 64)));
}

// With no idle worker left, a client waiting in the accept queue needs one:
// an idle connection goes at the short grace, as before.
Test(park_grace, a_pool_with_no_idle_worker_parks_at_the_short_grace)
{
    cr_assert_eq(park_grace_ms(0, 64), kParkGraceMs);
    cr_assert_eq(park_grace_ms(-3, 64), kParkGraceMs, "a count that drifted below zero is none");
    cr_assert_eq(park_grace_ms(0, 1), kParkGraceMs);
    cr_assert_eq(park_grace_ms(5, 0), kParkGraceMs, "min_spare 0: only the short grace");
}

Test(park_grace, shrinks_as_idle_workers_run_out)
{
    std::int64_t last = park_grace_ms(100, 64);
    cr_assert_eq(last, kParkGraceMaxMs, "more idle than min_spare: the longest grace");
    for (int idle = 64; idle >= 0; --idle) {
        std::int64_t g = park_grace_ms(idle, 64);
        cr_assert_leq(g, last, "%d idle: %ld ms, more than with one more idle (%ld)", idle, long(g),
                      long(last));
        cr_assert_geq(g, kParkGraceMs);
        last = g;
    }
}

// A connection back from the parker is parked again with no grace only when
// its client had been idle a long time: a client that sends back to back
// never is, so it keeps its grace and its worker.
Test(repark, only_a_client_idle_for_a_second_is_parked_again_at_once)
{
    using preforkd::handoff::Kind;
    preforkd::handoff::Parcel p;
    p.kind = Kind::ready;
    p.since_ms = 100000;
    cr_expect(repark_at_once(p, 100000 + kReparkIdleMs), "idle for kReparkIdleMs");
    cr_expect(repark_at_once(p, 100000 + 5000), "idle for 5 s");
    cr_expect_not(repark_at_once(p, 100000 + kReparkIdleMs - 1), "idle just short of it");
    cr_expect_not(repark_at_once(p, 100000 + 3), "a client that answered at once");
    p.tls = true;
    cr_expect_not(repark_at_once(p, 100000 + 5000), "a TLS hello is no keep-alive connection");
    p.tls = false;
    for (Kind k :
         {Kind::keepalive, Kind::partial_head, Kind::tls_hello, Kind::expired, Kind::sending}) {
        p.kind = k;
        cr_expect_not(repark_at_once(p, 100000 + 5000), "kind %d is not a ready head", int(k));
    }
}
