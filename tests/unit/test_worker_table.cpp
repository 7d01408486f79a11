// The master's worker table: the one walk that every pool decision reads.
#include <criterion/criterion.h>

#include "preforkd/worker_table.hpp"

using namespace preforkd;
using master::Tally;
using master::WorkerTable;
using scoreboard::State;

namespace {

// A row for a worker that is not really there: nothing here signals it.
void put(WorkerTable& t, int slot, pid_t pid, std::uint32_t generation, State state)
{
    t.claim(slot, generation);
    t.adopt(slot, pid, generation, Fd());
    t.slot(slot).state.store(state);
}

}  // namespace

Test(worker_table, one_walk_counts_by_the_rules_of_each_figure)
{
    WorkerTable t;
    t.attach(scoreboard::create());
    put(t, 0, 1000, 2, State::idle);
    put(t, 1, 1001, 2, State::starting);
    put(t, 2, 1002, 2, State::reading);
    put(t, 3, 1003, 2, State::idle);
    t.row(3).quit_sent_ms = 1;   // retiring: out of the pool, still alive
    put(t, 5, 1005, 1, State::idle);   // an old generation, draining
    Tally g = t.tally(2);
    cr_expect_eq(g.live, 5);
    cr_expect_eq(g.accepting, 2, "idle and not retiring, any generation: %d", g.accepting);
    cr_expect_eq(g.pool.total, 3, "generation 2, not retiring: %d", g.pool.total);
    cr_expect_eq(g.pool.idle, 2, "a starting worker counts as idle: %d", g.pool.idle);
    cr_expect_eq(g.up, 3, "past start-up, retiring included: %d", g.up);
    cr_expect_eq(g.idle_slot, 0, "the retiring idle worker is not offered: %d", g.idle_slot);
    Tally old = t.tally(1);
    cr_expect_eq(old.pool.total, 1);
    cr_expect_eq(old.idle_slot, 5);
    cr_expect(t.has(1) && t.has(2) && !t.has(3));
}

Test(worker_table, released_slots_are_reused_lowest_first)
{
    WorkerTable t;
    t.attach(scoreboard::create());
    put(t, 0, 2000, 1, State::idle);
    put(t, 1, 2001, 1, State::idle);
    cr_expect_eq(t.free_slot(), 2);
    t.release(0);
    cr_expect_eq(t.free_slot(), 0);
    cr_expect_eq(t.slot(0).state.load(), State::empty);
    cr_expect_eq(t.slot_of(2001), 1);
    cr_expect_eq(t.slot_of(2000), -1);
}

Test(worker_table, adopt_board_takes_the_live_slots_of_an_inherited_board)
{
    scoreboard::Board* board = scoreboard::create();
    WorkerTable before;
    before.attach(board);
    put(before, 0, 3000, 4, State::idle);
    put(before, 7, 3007, 5, State::writing);
    WorkerTable after;
    after.attach(board);
    cr_expect_eq(after.adopt_board(), 5u);
    cr_expect_eq(after.slot_of(3000), 0);
    cr_expect_eq(after.slot_of(3007), 7);
    cr_expect_eq(after.row(7).generation, 5u);
    cr_expect_eq(after.tally(5).live, 2);
}
