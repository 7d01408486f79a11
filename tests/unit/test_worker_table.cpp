// The master's worker table: the one walk that every pool decision reads.
#include <criterion/criterion.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

// A freshly forked child lets go of the whole table: the other workers'
// channels are closed in it, and its copy of the rows is unmapped, so that
// the master's later writes to them leave no private pages behind in it.
// The master's own table is untouched.
Test(worker_table, a_child_releases_the_channels_and_the_rows)
{
    WorkerTable t;
    t.attach(scoreboard::create());
    int a[2], b[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a), 0);
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b), 0);
    t.claim(0, 1);
    t.adopt(0, 3000, 1, Fd(a[0]));
    t.claim(1, 1);
    t.adopt(1, 3001, 1, Fd(b[0]));
    void* rows = &t.row(0);
    pid_t child = ::fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        t.release_in_child();
        int status = 0;
        if (::fcntl(a[0], F_GETFD) != -1 || errno != EBADF) status |= 1;
        if (::fcntl(b[0], F_GETFD) != -1 || errno != EBADF) status |= 2;
        unsigned char resident;
        if (::mincore(rows, 1, &resident) != -1 || errno != ENOMEM) status |= 4;
        if (t.size() != 0) status |= 8;
        ::_exit(status);
    }
    int status = 0;
    cr_assert_eq(::waitpid(child, &status, 0), child);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child: 1/2 channel open, 4 rows still mapped, 8 table not empty: %d",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    cr_expect_neq(::fcntl(a[0], F_GETFD), -1, "the master keeps its channels");
    cr_expect_eq(t.row(1).pid, 3001, "and its rows");
    ::close(a[1]);
    ::close(b[1]);
}
