// pool.cpp - the spawn-rate doubling and the gentle shrink of the pool.
//
// Apache prefork's rule, as its idle_spawn_rate does it: while fewer than
// min_spare workers are idle, fork `rate` workers this second, and double the
// rate for the next second if the pool is still short then.  The count is not
// capped at the shortage (min_spare - idle): under load every new worker is
// busy at once, so a cap at the shortage grows a pool with min_spare = 2 by
// two workers a second at most, however long the queue.  The doubling is
// what meets a burst within seconds; starting at one is what keeps a blip
// from forking 32 processes.
#include "preforkd/pool.hpp"

#include <algorithm>

namespace preforkd::pool {

Decision Maintainer::tick(const Counts& counts, const Limits& limits) noexcept
{
    Decision d;
    if (counts.idle > limits.max_spare && counts.total > limits.floor) {
        // One a second: a pool that shrank too eagerly would have to fork
        // again at the next burst.
        d.retire = 1;
        rate_ = 1;
        return d;
    }
    int room = limits.max - counts.total;
    bool short_of_idle = counts.idle < limits.min_spare;
    int below_floor = limits.floor - counts.total;
    if ((!short_of_idle && below_floor <= 0) || room <= 0) {
        rate_ = 1;
        return d;
    }
    // Below the floor alone (a worker died or was recycled) is made good in
    // full, at once; short of idle workers spawns at the doubling rate.
    int want = std::max(short_of_idle ? rate_ : 0, below_floor);
    d.spawn = std::min(want, room);
    if (short_of_idle)
        rate_ = std::min(rate_ * 2, kMaxSpawnRate);
    return d;
}

}  // namespace preforkd::pool
