// pool.hpp - how many workers to start or retire, as pure arithmetic.
//
// Apache prefork's rule: keep between min_spare and max_spare idle workers,
// never more than max.  Beside it a floor: never fewer than `floor` workers
// in all (`start`, moved by SIGTTIN/SIGTTOU), so a worker that dies or is
// recycled is replaced even when enough others are idle.  While short of idle workers, spawn 1, then 2, 4 ...
// up to 32 in each following second: a burst of load is met quickly without
// a fork storm at the first blip.  While over, retire one idle worker a
// second, so a pool shrinks gently after a burst.
#pragma once

namespace preforkd::pool {

struct Counts {
    int total = 0;   // live workers of the current generation
    int idle = 0;    // of those, waiting in accept
};

struct Limits {
    int min_spare = 0;
    int max_spare = 0;
    int max = 1;
    int floor = 0;
};

struct Decision {
    int spawn = 0;
    int retire = 0;
};

inline constexpr int kMaxSpawnRate = 32;

class Maintainer {
public:
    // Called once a second with the pool as the scoreboard shows it.
    Decision tick(const Counts& counts, const Limits& limits) noexcept;
    int spawn_rate() const noexcept { return rate_; }
    void reset() noexcept { rate_ = 1; }

private:
    int rate_ = 1;
};

}  // namespace preforkd::pool
