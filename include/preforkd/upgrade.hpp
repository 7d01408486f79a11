// upgrade.hpp - the in-place binary upgrade: check, hand over, exec, roll back.
//
// On SIGUSR2 or `preforkd -s upgrade` the master runs the binary it was
// started from (by the same path, so a package upgrade that replaced the
// file is what runs) with -t on the current configuration; if that fails,
// nothing changes.  Otherwise it execve()s that binary in place, keeping its
// pid, and hands the next image what it must not lose: the listeners, the
// scoreboard (a memfd), the control socket and the client waiting for the
// verdict, the locked pid file, the parker's queues, each running worker's
// pid, slot, generation and channel, and a descriptor of the image that is
// handing over.  All of it travels as inherited descriptors named by one
// environment variable, PREFORKD_UPGRADE; the workers stay the process's
// children across execve, so waitpid() still reaps them.
//
// The new image adopts the running workers as the old generation and starts
// a new one, as a reload does.  Until a worker of the new generation is up
// the upgrade is not committed: a failure before then (a configuration it
// cannot load, workers that cannot start, no worker within the deadline,
// a crash: see below) re-executes the previous image from the kept
// descriptor (fexecve) with the same kind of handover, marked as a
// rollback, and the previous image carries on with the workers it had.  A failed execve()
// simply returns: the running image restores close-on-exec and carries on.
//
// Rejected: a second master with a new pid, as nginx and Unicorn do, which
// changes systemd's MAINPID and leaves the administrator to stop the old
// master; passing descriptors over a unix socket to a new process, which
// needs that second process all the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "preforkd/cli.hpp"

namespace preforkd::upgrade {

// The environment variable that names the handed-over descriptors.
inline constexpr const char* kVariable = "PREFORKD_UPGRADE";

// How long `-t` may take.  How long a new image has to get a worker of its
// generation up before it rolls back is workers.upgrade_timeout, at most
// kMaxCommitSeconds, so that `-s upgrade` can wait for the verdict with a
// bound of its own.
inline constexpr int kCheckTimeoutMs = 30000;
inline constexpr int kMaxCommitSeconds = 60;

// ---- the handover (pure: bytes in, struct out) ----------------------------------

struct Listener {
    int fd = -1;
    bool created_path = false;   // a unix socket file the master must unlink
    std::string canonical;       // listener::Address::canonical
};

struct Worker {
    pid_t pid = 0;
    int slot = 0;
    std::uint32_t generation = 0;
    int channel = -1;                 // the master's end of its socketpair
    std::int64_t quit_sent_ms = 0;    // CLOCK_MONOTONIC, the same clock after exec
    bool killed = false;
};

struct Handover {
    std::size_t board_size = 0;       // sizeof(scoreboard::Board) of the sender
    int board = -1;                   // the scoreboard's memfd
    Listener control;                 // the control socket
    int client = -1;                  // the -s upgrade client, -1 for SIGUSR2
    int pid_file = -1;                // locked: the lock travels with it
    std::string pid_path;
    int previous = -1;                // the sender's own image
    int queues[4] = {-1, -1, -1, -1}; // parker::Queues, in declaration order
    int tickets = -1;                 // the session-ticket keys' memfd, -1 if none
    pid_t parker = 0;
    // Forward: the receiver starts generation + 1 and retires the rest.
    // Rollback: the receiver keeps `generation` as its own.
    std::uint32_t generation = 0;
    std::int64_t started_at = 0;      // Unix time the master first started
    std::int64_t started_ms = 0;      // CLOCK_MONOTONIC of that start
    std::vector<Listener> listeners;
    std::vector<Worker> workers;
    // The sender's command line: what a rollback executes, whatever
    // command line the new binary was given (a wrapper may change it).
    std::vector<std::string> arguments;
    std::string failure;              // non-empty: a rollback, and why
};

// One line of space-separated key=value words; text values are
// percent-encoded, so any path survives.
std::string encode(const Handover& h);
// The handover of `text`, or nothing with `error` saying what is wrong.
std::optional<Handover> decode(std::string_view text, std::string& error);
// Every descriptor `h` names, for clearing and restoring close-on-exec.
std::vector<int> descriptors(const Handover& h);

// ---- this process ---------------------------------------------------------------

// First thing in main(): remembers the path this binary was started from
// (argv[0] made absolute, or /proc/self/exe when it was found on PATH) and
// opens the running image, close-on-exec, for a later rollback to it.
void init(const char* argv0);
const std::string& binary_path();
int own_image();

// Closes the image descriptor in a forked child that will not exec.
void close_in_child();

// The handover this image was started with, read from the environment and
// removed from it the first time; nullptr on an ordinary start.  A
// variable that cannot be decoded is logged and ignored.
const Handover* received();

// The command line of the next image: the binary's path, -f if given,
// -c and -p as the master was started with (absolute by now).
std::vector<std::string> arguments(const cli::Options& o);

// Runs `binary -t -c CONFIG [-p PIDFILE]` in a child and waits up to
// kCheckTimeoutMs.  "" when it exited 0; otherwise why, with its output.
std::string check(const std::string& binary, const cli::Options& o);

// Clears close-on-exec on the descriptors of `h`, sets PREFORKD_UPGRADE
// (and NOTIFY_SOCKET, so the next image still speaks to systemd), and
// executes `path`, or the image open on `image` when it is not -1.  Returns
// only when that failed: close-on-exec is restored and the result is the
// reason, "execve(/usr/sbin/preforkd) failed: Permission denied".
std::string exec(const std::string& path, int image, const std::vector<std::string>& argv,
                 const Handover& h);

// The rollback of a received forward handover that failed before it had
// anything of its own (main(): the configuration could not be loaded):
// executes the previous image, with the command line it handed over, `h`
// and `why`.  Returns only when that failed too, with the reason.
std::string roll_back(Handover h, const std::string& why);

// ---- a crash of the new image ---------------------------------------------------
//
// A new image that dies by a signal before it is ready takes the pid with it,
// and the workers would follow.  So from the moment it reads a forward
// handover until the upgrade commits, the image catches the signals of a
// crash (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) with a handler that
// only clears close-on-exec and calls fexecve(), both async-signal-safe, on
// the previous image, with a rollback handover prepared beforehand in
// ordinary code.  The returning image checks what that handover lists (a
// worker may have died since it was written) and ends the failed image's
// workers that it does not list.  In a forked child the handler does
// nothing but die of the signal, as without it.
//
// Rejected: a trial run of the new binary in a child before the exec, which
// cannot take over the pool and so cannot try what may crash; a guardian
// process, which cannot bring back a pid once it is gone.

// Prepares `back` (a rollback handover: previous -1; its failure is set
// here, naming the signal) to be executed from `image` by the handler, and
// installs the handler the first time.  Called again whenever what the
// image holds changes; the handler always sees a complete handover.
void arm_crash_rollback(const Handover& back, int image);

// The upgrade committed (or this is a returning image): a crash is a crash.
// Also called in forked children.
void disarm_crash_rollback();

}  // namespace preforkd::upgrade
