// parker.hpp - the process that holds connections no worker should wait on.
//
// One event-driven process (epoll) beside the pool, forked and respawned by
// the master like a worker but belonging to no generation (DESIGN 9).  It
// takes parcels (handoff.hpp) from workers on the park socket, watches each
// connection until its request head (or TLS ClientHello) is complete, and
// then passes it to whichever idle worker takes it from the ready queue.  It
// never parses more than it takes to find the end of a head and never
// writes to a client: a head that misses its deadline goes back to a worker
// as "expired", which answers 408 and logs it as it always has.  An idle
// keep-alive connection that expires, or whose client closes, is closed in
// silence.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <string_view>

#include "preforkd/fd.hpp"
#include "preforkd/privileges.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::parker {

enum class Progress { waiting, complete };

// Whether `bytes` (from the start of a request, leading empty lines allowed)
// hold a whole head: an empty line ends it.  A head that reaches `max_head`
// bytes, or ends in bare LFs, is "complete" too: the worker's parser gives
// it its 431 or 400, so the parker never needs to judge it.
Progress head_progress(std::string_view bytes, std::size_t max_head) noexcept;

// Whether `bytes` (from the first byte of a TLS connection) hold a whole
// ClientHello: handshake records until the handshake message's length is
// covered.  Anything that is not a TLS handshake record (plain HTTP sent to
// a TLS port) is "complete": the worker's TLS front end answers it.
Progress hello_progress(std::string_view bytes) noexcept;

struct Context {
    int park = -1;     // parcels from workers (SOCK_SEQPACKET, non-blocking)
    int ready = -1;    // parcels to workers (SOCK_SEQPACKET, non-blocking)
    scoreboard::Slot* slot = nullptr;       // the parker's own slot
    std::atomic<int>* parked = nullptr;     // published count of held connections
    const volatile sig_atomic_t* quit = nullptr;   // QUIT or TERM received
    // The sending end of the park queue, and USR2 received: hand what is
    // held over to the parker that replaces this one, then stop.
    int handover = -1;
    const volatile sig_atomic_t* hand_over = nullptr;
    const sigset_t* wait_mask = nullptr;   // the mask while waiting (signals open)
};

// The parker's loop; returns when told to quit.  Connections it still holds
// are closed then: none of them has a request the parker could hand on.
void run(const Context& c);

// The two queues, made by the master before it forks anything, so that
// workers and every parker (a respawned one too) share them: the park queue
// (workers send, the parker receives) and the ready queue (the parker sends,
// idle workers receive).  SOCK_SEQPACKET pairs: one message per parcel, and
// a message with its descriptor reaches exactly one reader.
struct Queues {
    Fd park_worker, park_parker;
    Fd ready_parker, ready_worker;
};
Queues make_queues();

// The parker process, after fork(): signals (QUIT and TERM stop it, USR2
// hands what it holds to its successor over the park queue and stops it;
// it keeps the queue's sending end for that), title, privilege drop, its
// sandbox when `sandboxed` (sandbox.hpp, Profile::parker: no file access, a
// list of its own), then the loop in board->parker.  Never returns.
[[noreturn]] void become(const Queues& q, scoreboard::Board* board,
                         const privileges::Identity& identity, bool sandboxed);

}  // namespace preforkd::parker
