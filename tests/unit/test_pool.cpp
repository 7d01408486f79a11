// Pool sizing: the Apache prefork rules plus the floor.
#include <criterion/criterion.h>

#include "preforkd/pool.hpp"

using namespace preforkd::pool;

Test(pool, spawn_rate_doubles_to_32_while_short)
{
    Maintainer m;
    Limits l{100, 200, 1000, 0};
    int expected[] = {1, 2, 4, 8, 16, 32, 32};
    int idle = 0;
    for (int want : expected) {
        Decision d = m.tick({idle, idle}, l);
        cr_assert_eq(d.spawn, want, "spawned %d, wanted %d", d.spawn, want);
        idle += d.spawn;
    }
}

Test(pool, rate_resets_once_the_shortage_is_met)
{
    Maintainer m;
    Decision d = m.tick({4, 4}, {5, 10, 256, 0});
    cr_assert_eq(d.spawn, 1);
    d = m.tick({5, 5}, {5, 10, 256, 0});
    cr_assert_eq(d.spawn, 0);
    cr_assert_eq(m.spawn_rate(), 1, "no shortage left, the rate resets");
}

// The issue this guards against: with min_spare = 2 under load, every new
// worker is busy at once, and a spawn capped at min_spare - idle grew the
// pool by two a second.  The rate must double regardless of min_spare.
Test(pool, busy_pool_grows_by_doubling_whatever_min_spare)
{
    Maintainer m;
    Limits l{2, 10, 256, 4};
    int expected[] = {1, 2, 4, 8, 16, 32, 32, 32};
    int total = 4;
    for (int want : expected) {
        Decision d = m.tick({total, 0}, l);
        cr_assert_eq(d.spawn, want, "spawned %d at %d workers, wanted %d", d.spawn, total, want);
        total += d.spawn;
    }
    cr_assert_eq(total, 4 + 127);
}

Test(pool, lost_workers_below_the_floor_are_replaced_at_once)
{
    Maintainer m;
    Decision d = m.tick({2, 2}, {0, 10, 256, 8});
    cr_assert_eq(d.spawn, 6);
}

Test(pool, never_above_max)
{
    Maintainer m;
    Limits l{50, 60, 10, 0};
    int total = 8;
    for (int i = 0; i < 10; ++i)
        total += m.tick({total, 0}, l).spawn;
    cr_assert_eq(total, 10);
}

Test(pool, retires_one_idle_worker_a_tick_when_over_max_spare)
{
    Maintainer m;
    Decision d = m.tick({20, 15}, {5, 10, 256, 0});
    cr_assert_eq(d.retire, 1);
    cr_assert_eq(d.spawn, 0);
}

Test(pool, floor_replaces_a_lost_worker_even_with_enough_idle)
{
    Maintainer m;
    Decision d = m.tick({1, 1}, {1, 3, 8, 2});
    cr_assert_eq(d.spawn, 1);
}

Test(pool, floor_keeps_idle_workers_above_max_spare)
{
    Maintainer m;
    Decision d = m.tick({5, 5}, {0, 2, 8, 5});
    cr_assert_eq(d.retire, 0);
}

Test(pool, steady_pool_does_nothing)
{
    Maintainer m;
    Decision d = m.tick({5, 5}, {5, 10, 256, 5});
    cr_assert_eq(d.spawn, 0);
    cr_assert_eq(d.retire, 0);
}
