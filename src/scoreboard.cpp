// scoreboard.cpp - the shared slots.
//
// The board is a memfd mapped MAP_SHARED rather than anonymous memory: its
// descriptor survives the execve of an in-place upgrade (upgrade.hpp), so
// the next image maps the very pages the running workers write.  Rejected:
// a file under /run (a name to clean up, and a board anyone with access to
// the directory could map) and POSIX shm (the same, under /dev/shm).
#include "preforkd/scoreboard.hpp"

#include <cstring>
#include <ctime>
#include <new>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

Board* create(Fd& memory)
{
    memory.reset(::memfd_create("preforkd-scoreboard", MFD_CLOEXEC));
    if (!memory)
        throw sys_error("memfd_create", "scoreboard");
    if (::ftruncate(memory.get(), off_t(sizeof(Board))) != 0)
        throw sys_error("ftruncate", "scoreboard");
    // A memfd grown by ftruncate reads as zeros, which is every atomic's
    // empty value.
    return attach(memory.get());
}

Board* create()
{
    Fd unused;
    return create(unused);
}

Board* attach(int memory)
{
    struct stat st;
    if (::fstat(memory, &st) != 0)
        throw sys_error("fstat", "scoreboard");
    if (st.st_size != off_t(sizeof(Board)))
        throw std::runtime_error("the scoreboard handed over has " + std::to_string(st.st_size) +
                                 " bytes, this build's has " + std::to_string(sizeof(Board)));
    void* p = ::mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED, memory, 0);
    if (p == MAP_FAILED)
        throw sys_error("mmap", "scoreboard");
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
