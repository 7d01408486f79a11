// signals.cpp - the signal table and the master's recording handlers.
//
// One sig_atomic_t flag per signal: a handler sets it and returns.  The
// table's order is the order in which the master handles pending signals:
// stops first, so a TERM is never queued behind a slow reload.
#include "preforkd/signals.hpp"

#include <cstring>

namespace preforkd::signals {
namespace {

constexpr Entry kTable[] = {
    {SIGTERM, "SIGTERM", "stop", "fast shutdown"},
    {SIGINT, "SIGINT", nullptr, "fast shutdown"},
    {SIGQUIT, "SIGQUIT", "quit", "graceful shutdown"},
    {SIGCHLD, "SIGCHLD", nullptr, "reap and replace workers"},
    {SIGHUP, "SIGHUP", "reload", "graceful reload"},
    {SIGUSR1, "SIGUSR1", "reopen", "reopen log files"},
    {SIGUSR2, "SIGUSR2", "upgrade", "re-execute the binary in place"},
    {SIGWINCH, "SIGWINCH", nullptr, "gracefully stop all workers"},
    {SIGTTIN, "SIGTTIN", nullptr, "one more worker in the pool's floor"},
    {SIGTTOU, "SIGTTOU", nullptr, "one fewer worker in the pool's floor"},
};

// In .data (PREFORKD_HANDLER_STATE): the master sets and clears them all its
// life, and a page of .bss it writes after forking a worker would stay
// behind in that worker as a private copy.
PREFORKD_HANDLER_STATE volatile sig_atomic_t g_pending[NSIG];
PREFORKD_HANDLER_STATE volatile sig_atomic_t g_any;

extern "C" void record(int number)
{
    g_pending[number] = 1;
    g_any = 1;
}

}  // namespace

const Entry* table(std::size_t& count) noexcept
{
    count = sizeof kTable / sizeof kTable[0];
    return kTable;
}

int from_word(std::string_view word) noexcept
{
    for (const Entry& e : kTable)
        if (e.word && word == e.word)
            return e.number;
    return 0;
}

const char* name(int number) noexcept
{
    for (const Entry& e : kTable)
        if (e.number == number)
            return e.name;
    return sigabbrev_np(number) ? sigabbrev_np(number) : "unknown signal";
}

void install_master(sigset_t& old_mask)
{
    sigset_t block;
    sigemptyset(&block);
    struct sigaction sa {};
    sa.sa_handler = record;
    sigfillset(&sa.sa_mask);
    // No SA_RESTART: the wait must return when a signal arrives.
    for (const Entry& e : kTable) {
        sigaddset(&block, e.number);
        sigaction(e.number, &sa, nullptr);
    }
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    for (const Entry& e : kTable)
        sigdelset(&old_mask, e.number);
    signal(SIGPIPE, SIG_IGN);
}

int take() noexcept
{
    if (!g_any)
        return 0;
    g_any = 0;
    for (const Entry& e : kTable) {
        if (g_pending[e.number]) {
            g_pending[e.number] = 0;
            g_any = 1;   // there may be more; the caller asks again
            return e.number;
        }
    }
    return 0;
}

void reset_for_child() noexcept
{
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (const Entry& e : kTable)
        sigaction(e.number, &sa, nullptr);
    for (int i = 0; i < NSIG; ++i)
        g_pending[i] = 0;
    g_any = 0;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace preforkd::signals
