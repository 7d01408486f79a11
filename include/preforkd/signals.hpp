// signals.hpp - the signal table and the master's signal recording.
//
// Handlers record a fact (one flag per signal) and nothing else; the master
// loop reads the flags with take() while signals are blocked.  Signals are
// unblocked only inside the loop's wait (ppoll with the saved mask).
#pragma once

#include <csignal>
#include <string_view>

// Puts a variable a signal handler touches in .data, even when it starts
// at zero.  Such a variable cannot be thread_local, where the rest of the
// state written after a fork lives (see worker.cpp): C++ leaves a
// handler's access to a thread-local object undefined.  In .bss each one
// would make the page it sits on a private copy in every worker, where
// .data is one page, which a worker writes anyway (its accept descriptor).
#define PREFORKD_HANDLER_STATE __attribute__((section(".data")))

namespace preforkd::signals {

struct Entry {
    int number;
    const char* name;      // "SIGHUP"
    const char* word;      // -s word ("reload"), nullptr when it has none
    const char* action;    // what the master does, for usage and logs
};

// Every signal the master acts on, in the order take() returns them.
const Entry* table(std::size_t& count) noexcept;

// The signal for a -s word, 0 if unknown.
int from_word(std::string_view word) noexcept;

// "SIGHUP" for SIGHUP; "signal N" style text for others.
const char* name(int number) noexcept;

// Installs the recording handlers for every table signal and blocks them;
// `old_mask` receives the mask to use while waiting.
void install_master(sigset_t& old_mask);

// The next recorded signal (and clears it), or 0 when none.  Fast-stop
// signals come first so a stop is never delayed behind a reload.
int take() noexcept;

// Restores default dispositions and an empty mask (for forked children).
void reset_for_child() noexcept;

}  // namespace preforkd::signals
