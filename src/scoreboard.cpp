// scoreboard.cpp - the shared slots.
#include "preforkd/scoreboard.hpp"

#include <cstring>
#include <ctime>
#include <new>
#include <sys/mman.h>

#include "preforkd/fd.hpp"

namespace preforkd::scoreboard {

const char* state_name(State s) noexcept
{
    switch (s) {
    case State::empty: return "empty";
    case State::starting: return "starting";
    case State::idle: return "idle";
    case State::reading: return "reading";
    case State::writing: return "writing";
    case State::keepalive: return "keepalive";
    case State::draining: return "draining";
    }
    return "unknown";
}

bool is_busy(State s) noexcept
{
    return s == State::reading || s == State::writing || s == State::draining;
}

Board* create()
{
    void* p = ::mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw sys_error("mmap", "scoreboard");
    // Anonymous memory is zeroed, which is every atomic's empty value.
    return static_cast<Board*>(p);
}

std::int64_t now_ms() noexcept
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void clear_status(Slot& slot) noexcept
{
    slot.bytes.store(0, std::memory_order_relaxed);
    slot.client[0] = '\0';
    slot.state_since_ms.store(now_ms(), std::memory_order_relaxed);
}

void set_state(Slot& slot, State state) noexcept
{
    if (slot.state.exchange(state, std::memory_order_relaxed) != state)
        slot.state_since_ms.store(now_ms(), std::memory_order_relaxed);
    progress(slot);
}

void progress(Slot& slot) noexcept
{
    slot.progress_ms.store(now_ms(), std::memory_order_relaxed);
}

}  // namespace preforkd::scoreboard
