// parker.hpp - the process that holds connections no worker should wait on.
//
// One event-driven process (epoll) beside the pool, forked and respawned by
// the master like a worker but belonging to no generation (DESIGN 9).  It
// takes parcels (handoff.hpp) from workers on the park socket, watches each
// connection until its request head (or TLS ClientHello) is complete, and
// then passes it to whichever idle worker takes it from the ready queue.  It
// never parses more than it takes to find the end of a head and never
// answers a request; the one thing it writes is the 408 of a head that
// missed its deadline.  An idle keep-alive connection that expires, or
// whose client closes, is closed in silence.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <string_view>

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

// The 408 a parked head gets when it misses its deadline.
std::string_view timeout_response() noexcept;

struct Context {
    int park = -1;     // parcels from workers (SOCK_SEQPACKET, non-blocking)
    int ready = -1;    // parcels to workers (SOCK_SEQPACKET, non-blocking)
    scoreboard::Slot* slot = nullptr;       // the parker's own slot
    std::atomic<int>* parked = nullptr;     // published count of held connections
    const volatile sig_atomic_t* quit = nullptr;   // QUIT or TERM received
    const sigset_t* wait_mask = nullptr;   // the mask while waiting (signals open)
};

// The parker's loop; returns when told to quit (idle connections closed,
// those with a request begun handed back first).
void run(const Context& c);

}  // namespace preforkd::parker
