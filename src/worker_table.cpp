// worker_table.cpp - the master's rows beside the scoreboard's slots.
//
// One walk, tally(), gives every count the loop decides on.  Before it,
// five near-identical loops each picked their own workers (live, of this
// generation, not retiring, idle or starting) and could drift apart; the
// rules now sit side by side where a reader can compare them.
//
// A starting worker counts as idle for the pool, as in Apache: it will be
// soon, and counting it as missing would fork a second one for the gap.  It
// does not count as up: "ready" and the end of a reload wait for workers
// that actually reached accept().
#include "preforkd/worker_table.hpp"

#include <algorithm>
#include <csignal>
#include <new>
#include <sys/mman.h>
#include <unistd.h>

#include "preforkd/config.hpp"

namespace preforkd::master {

using scoreboard::State;

namespace {

std::size_t mapping_bytes()
{
    std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
    std::size_t bytes = std::size_t(config::kMaxWorkers) * sizeof(WorkerInfo);
    return (bytes + page - 1) / page * page;
}

}  // namespace

WorkerTable::WorkerTable()
{
    void* p = ::mmap(nullptr, mapping_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED)
        throw sys_error("mmap", "worker table");
    auto* rows = static_cast<WorkerInfo*>(p);
    for (int i = 0; i < config::kMaxWorkers; ++i)
        new (&rows[i]) WorkerInfo();
    rows_ = std::span<WorkerInfo>(rows, std::size_t(config::kMaxWorkers));
}

WorkerTable::~WorkerTable()
{
    if (rows_.empty())
        return;
    for (WorkerInfo& w : rows_)
        w.~WorkerInfo();
    ::munmap(rows_.data(), mapping_bytes());
}

int WorkerTable::free_slot() const
{
    for (int i = 0; i < size(); ++i)
        if (rows_[std::size_t(i)].pid == 0)
            return i;
    return -1;
}

void WorkerTable::claim(int slot, std::uint32_t generation)
{
    scoreboard::Slot& s = board_->slots[slot];
    s.generation.store(generation);
    s.state.store(State::starting);
    s.requests.store(0);
    s.request[0] = s.note[0] = '\0';
    s.sandboxed.store(0);
    s.sandbox_call.store(0);
    scoreboard::progress(s);
    scoreboard::clear_status(s);
}

void WorkerTable::adopt(int slot, pid_t pid, std::uint32_t generation, Fd channel)
{
    WorkerInfo& w = rows_[std::size_t(slot)];
    w = WorkerInfo{};
    w.pid = pid;
    w.generation = generation;
    w.channel = std::move(channel);
    board_->slots[slot].pid.store(pid);
}

std::uint32_t WorkerTable::adopt_board()
{
    std::uint32_t newest = 0;
    for (int i = 0; i < size(); ++i) {
        const scoreboard::Slot& s = board_->slots[i];
        pid_t pid = s.pid.load();
        if (pid <= 0 || s.state.load() == State::empty || rows_[std::size_t(i)].pid)
            continue;
        std::uint32_t generation = s.generation.load();
        adopt(i, pid, generation, Fd());
        newest = std::max(newest, generation);
    }
    return newest;
}

void WorkerTable::release(int slot)
{
    WorkerInfo& w = rows_[std::size_t(slot)];
    w.pid = 0;
    w.channel.reset();
    board_->slots[slot].pid.store(0);
    board_->slots[slot].state.store(State::empty);
}

int WorkerTable::slot_of(pid_t pid) const
{
    for (int i = 0; i < size(); ++i)
        if (rows_[std::size_t(i)].pid == pid)
            return i;
    return -1;
}

Tally WorkerTable::tally(std::uint32_t generation) const
{
    Tally t;
    for (int i = 0; i < size(); ++i) {
        const WorkerInfo& w = rows_[std::size_t(i)];
        if (!w.pid)
            continue;
        ++t.live;
        State s = board_->slots[i].state.load();
        bool ours = w.generation == generation;
        if (ours && s != State::starting && s != State::empty)
            ++t.up;
        if (w.quit_sent_ms)
            continue;
        if (s == State::idle)
            ++t.accepting;
        if (!ours)
            continue;
        ++t.pool.total;
        if (s == State::idle || s == State::starting)
            ++t.pool.idle;
        // The highest idle slot goes first, so the low slots stay in use.
        if (s == State::idle)
            t.idle_slot = i;
    }
    return t;
}

bool WorkerTable::has(std::uint32_t generation) const
{
    for (const WorkerInfo& w : rows_)
        if (w.pid && w.generation == generation)
            return true;
    return false;
}

void WorkerTable::retire(int slot)
{
    WorkerInfo& w = rows_[std::size_t(slot)];
    if (w.pid == 0 || w.quit_sent_ms != 0)
        return;
    ::kill(w.pid, SIGQUIT);
    w.quit_sent_ms = scoreboard::now_ms();
}

void WorkerTable::signal_all(int number)
{
    for (WorkerInfo& w : rows_) {
        if (!w.pid)
            continue;
        ::kill(w.pid, number);
        if (number == SIGKILL)
            w.killed = true;
    }
}

void WorkerTable::release_in_child() noexcept
{
    // The descriptors are closed without writing a row (resetting each Fd
    // would copy every page of rows into the child first), and the rows
    // are then dropped unread: the child never returns to the master's
    // code (worker::run() ends in _exit), so none of them is needed again.
    for (const WorkerInfo& w : rows_)
        if (w.channel)
            ::close(w.channel.get());
    if (!rows_.empty())
        ::munmap(rows_.data(), mapping_bytes());
    rows_ = {};
}

}  // namespace preforkd::master
