// scoreboard.hpp - one slot per worker in memory shared by the whole pool.
//
// Created by the master before the first fork (MAP_SHARED|MAP_ANONYMOUS) and
// never resized: it has a slot for the largest pool the configuration allows.
// A worker writes only its own slot; the master reads them all and decides
// everything about the pool from them (a worker serving a status page reads
// them too, and writes nothing for it).  Fields are atomics so the master
// never reads a torn counter; the request text is advisory (for logs).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "preforkd/config.hpp"

namespace preforkd::scoreboard {

enum class State : std::uint8_t {
    empty,      // no worker
    starting,   // forked, not yet accepting
    idle,       // waiting in accept
    reading,    // reading a request head
    writing,    // sending a response
    keepalive,  // waiting for the next request on an open connection
    draining,   // finishing its last request before exiting
};

const char* state_name(State s) noexcept;
bool is_busy(State s) noexcept;   // reading, writing, draining

struct Slot {
    std::atomic<pid_t> pid;
    std::atomic<std::uint32_t> generation;
    std::atomic<State> state;
    std::atomic<std::uint64_t> requests;
    std::atomic<std::int64_t> progress_ms;   // CLOCK_MONOTONIC of last progress
    char request[160];                       // current request line
    char note[160];                          // why a worker failed to start
    // Sandbox (sandbox.hpp): kSeccomp | kLandlock as far as they took effect,
    // and the number + 1 of the system call it trapped (0: none), written by
    // the worker's SIGSYS handler for the master's exit log.
    std::atomic<std::uint8_t> sandboxed;
    std::atomic<std::int32_t> sandbox_call;
    // For preforkd -s status (control.hpp):
    std::atomic<std::uint64_t> bytes;        // response body bytes sent
    char client[160];                        // address of the current client
    std::atomic<std::int64_t> state_since_ms;   // CLOCK_MONOTONIC of the last state change
};

inline constexpr std::uint8_t kSeccomp = 1;
inline constexpr std::uint8_t kLandlock = 2;

// What the master alone knows about the pool, published on every pass of
// its loop (Master::publish_status) so that a worker serving a status page
// (control::snapshot_of) shows what `preforkd -s status` shows.  Zero until
// the first pass.
struct Facts {
    std::atomic<pid_t> pid;
    std::atomic<std::int64_t> started_ms;         // CLOCK_MONOTONIC the master started
    std::atomic<std::int64_t> started_at;         // the same as Unix time
    std::atomic<std::int64_t> config_loaded_at;   // Unix time of the last (re)load
    std::atomic<std::uint32_t> generation;        // the current one
    std::atomic<int> floor;                       // the pool's floor in force
    std::atomic<int> floor_configured;            // workers.start
    std::atomic<int> max;                         // workers.max
    std::atomic<bool> paused;                     // SIGWINCH stopped the workers
    std::atomic<bool> stopping;                   // a stop is under way
    std::atomic<bool> parking;                    // a parker runs
    char config_file[256];                        // written before the first fork
};

struct Board {
    std::atomic<std::uint32_t> log_epoch;    // bumped when logs are reopened
    // Published by the master on every pass of its loop, read by workers
    // deciding how long an idle keep-alive connection may hold them.
    std::atomic<int> idle_workers;
    std::atomic<int> spare_target;           // min_spare in force
    Slot slots[config::kMaxWorkers];
    // The parker (parker.hpp) belongs to no generation and has a slot of
    // its own; it publishes how many connections it holds.
    Slot parker;
    std::atomic<int> parked;
    // Set by the master when it stops for good: workers then serve what the
    // ready queue still holds before they exit, instead of leaving it to the
    // next generation.
    std::atomic<bool> stopping;
    // Set by the first worker that found a sandbox mechanism missing, so
    // the pool says it once.
    std::atomic<bool> sandbox_gap_said;
    Facts master;
};

// Maps a zeroed board shared with every future child.  Throws on failure.
Board* create();

// CLOCK_MONOTONIC in milliseconds.
std::int64_t now_ms() noexcept;

// Master side, before a fork: a fresh slot's status figures.
void clear_status(Slot& slot) noexcept;

// Worker side: its own slot.  set_state() notes when the state changed.
void set_state(Slot& slot, State state) noexcept;
void progress(Slot& slot) noexcept;
// Copies `text` into a text field, cut to fit and NUL-terminated.
template <std::size_t N>
void set_text(char (&field)[N], std::string_view text) noexcept
{
    std::size_t n = std::min(text.size(), N - 1);
    std::memcpy(field, text.data(), n);
    field[n] = '\0';
}
// A text field another process writes: its terminating NUL is not trusted.
template <std::size_t N>
std::string text_of(const char (&field)[N])
{
    return std::string(field, ::strnlen(field, N));
}

}  // namespace preforkd::scoreboard
