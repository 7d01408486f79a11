// pool.cpp - the spawn-rate doubling and the gentle shrink of the pool.
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
    int shortage = std::max(limits.min_spare - counts.idle, limits.floor - counts.total);
    if (shortage <= 0 || room <= 0) {
        rate_ = 1;
        return d;
    }
    d.spawn = std::min({rate_, shortage, room});
    // Still short next second?  Then twice as many: a burst is met within a
    // few seconds without forking 32 processes at the first blip.
    if (shortage > d.spawn)
        rate_ = std::min(rate_ * 2, kMaxSpawnRate);
    else
        rate_ = 1;
    return d;
}

}  // namespace preforkd::pool
