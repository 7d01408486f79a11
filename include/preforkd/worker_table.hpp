// worker_table.hpp - the master's table of its workers, beside the scoreboard.
//
// The scoreboard (scoreboard.hpp) is what workers say about themselves;
// this table is what only the master knows of each: its pid, generation,
// what the master asked of it (retire, abort, kill) and the master's end of
// its channel.  Row i and scoreboard slot i are the same worker.  Every
// figure the master's decisions need is read in one walk, tally(), so that
// "how many are idle", "how many are up" and "which one to retire" cannot
// disagree about which workers count.
#pragma once

#include <cstdint>
#include <span>
#include <sys/types.h>

#include "preforkd/fd.hpp"
#include "preforkd/pool.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::master {

// What the master knows about a worker that the scoreboard does not say.
struct WorkerInfo {
    pid_t pid = 0;
    std::uint32_t generation = 0;
    std::int64_t quit_sent_ms = 0;    // when SIGQUIT was sent, 0 if not
    std::int64_t abort_sent_ms = 0;   // when the watchdog fired, 0 if not
    bool killed = false;              // SIGKILL sent
    Fd channel;                       // master's end of the worker's socketpair
};

// The figures of one walk over the table, for one generation.
struct Tally {
    int live = 0;          // workers alive, any generation
    int accepting = 0;     // idle in accept() and not retiring, any generation
    pool::Counts pool;     // the generation's, not retiring; starting counts as idle
    int up = 0;            // the generation's, past start-up
    int idle_slot = -1;    // the generation's idle worker to retire first, or -1
};

class WorkerTable {
public:
    WorkerTable();
    ~WorkerTable();
    WorkerTable(const WorkerTable&) = delete;
    WorkerTable& operator=(const WorkerTable&) = delete;

    // The scoreboard whose slots the rows mirror; set once, before any row.
    void attach(scoreboard::Board* board) noexcept { board_ = board; }

    // A free row (and slot), or -1 when all workers.max are taken.
    int free_slot() const;
    // Prepares slot `slot` for a worker of `generation` about to be forked.
    void claim(int slot, std::uint32_t generation);
    // Records the forked (or, after an upgrade, inherited) worker `pid` in
    // row `slot`.  The seam for adopting workers that another image of the
    // master started: their slots are already filled in the scoreboard.
    void adopt(int slot, pid_t pid, std::uint32_t generation, Fd channel);
    // After an in-place upgrade: a row for every slot of the (inherited)
    // scoreboard that names a live worker, with the generation the slot
    // records and no channel.  Returns the highest generation adopted, 0 if
    // none.  The caller treats them as an old generation to retire.
    std::uint32_t adopt_board();
    // Empties row and slot `slot` after its worker was reaped (or not forked).
    void release(int slot);
    // The row of worker `pid`, or -1.
    int slot_of(pid_t pid) const;

    WorkerInfo& row(int slot) { return rows_[std::size_t(slot)]; }
    const WorkerInfo& row(int slot) const { return rows_[std::size_t(slot)]; }
    scoreboard::Slot& slot(int slot) { return board_->slots[slot]; }
    const scoreboard::Slot& slot(int slot) const { return board_->slots[slot]; }
    int size() const noexcept { return int(rows_.size()); }

    Tally tally(std::uint32_t generation) const;
    // Whether any worker of `generation` is alive.
    bool has(std::uint32_t generation) const;

    // SIGQUIT to one worker, once: it finishes its request and exits.
    void retire(int slot);
    // retire() every worker whose generation `which` selects.
    template <class Which>
    void retire_if(Which which)
    {
        for (int i = 0; i < size(); ++i)
            if (rows_[std::size_t(i)].pid && which(rows_[std::size_t(i)].generation))
                retire(i);
    }
    // Sends `number` to every worker; SIGKILL is remembered per row.
    void signal_all(int number);

    // In a freshly forked child that never returns to the master's code:
    // closes every channel (each belongs to its own worker) and unmaps the
    // child's copy of the rows.  The master goes on writing rows, and each
    // page of them it writes after the fork would otherwise stay behind as
    // the child's own copy: a page or more in each of hundreds of workers.
    // The table is empty afterwards.
    void release_in_child() noexcept;

private:
    // config::kMaxWorkers rows in an anonymous mapping of their own, so
    // that a child can let go of all of them (release_in_child()).
    std::span<WorkerInfo> rows_;
    scoreboard::Board* board_ = nullptr;
};

}  // namespace preforkd::master
