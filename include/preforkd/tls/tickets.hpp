// tls/tickets.hpp - session-ticket keys shared by the master and every worker.
//
// A TLS session ticket is the server's encrypted note of a session, kept by
// the client; it resumes only on a process that holds the key it was
// encrypted with.  So the keys live in one shared-memory block the master
// creates before its first fork: every worker of every generation reads the
// same keys, and a client resumes whichever worker it reaches.
//
// The master alone writes the block.  It rotates the keys every
// tls.ticket_rotation seconds: a new key encrypts, the one before it only
// decrypts for one more period, and a key two rotations old is gone (its
// tickets get a full handshake).  A reload never regenerates them, so
// resumption survives the daily logrotate HUP.  With tls.ticket_key_file the
// keys come from that file instead (the first encrypts, the others only
// decrypt), so that machines behind one load balancer share them; the file
// is read again on every reload and nothing is rotated.  No key is ever
// written to disk.
//
// Workers read through a sequence counter (a seqlock): the writer makes it
// odd while it writes, and a reader copies the keys and retries if the
// counter moved.  A dead worker can hold nothing, and the master never
// waits for a worker.  The block is a memfd mapping, so that an in-place
// binary upgrade could pass its descriptor across exec.
//
// Only the master can write the keys.  It maps the block twice: writable,
// with MADV_DONTFORK so that no child inherits that mapping, and read-only
// through a descriptor opened O_RDONLY (/proc/self/fd; without /proc, a
// warning and a PROT_READ view of the read-write one), which every process
// reads through.  A mapping made from a read-only descriptor can never be
// made writable (mprotect says EACCES), and a child drops the master's
// read-write descriptor before it runs anything of its own
// (forget_in_child()), so a worker taken over by a client cannot change the
// keys of every other worker.
//
// The key file: a multiple of 80 bytes, each 80 a key as 16 bytes of name,
// 32 of HMAC-SHA256 key and 32 of AES-256 key (nginx's
// ssl_session_ticket_key layout); `openssl rand 80 > file` makes one.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "preforkd/config.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace preforkd::tls::tickets {

struct Key {
    std::array<std::uint8_t, 16> name{};
    std::array<std::uint8_t, 32> hmac{};
    std::array<std::uint8_t, 32> aes{};

    bool operator==(const Key&) const = default;
};

inline constexpr std::size_t kKeyBytes = 80;
// Keys a file may hold (and the block keeps): enough for a rolling
// overlap across a fleet, small enough to look up by a linear scan.
inline constexpr std::size_t kMaxKeys = 16;

// Parses a key file's bytes; empty with `why` set unless they are 1 to
// kMaxKeys whole keys.
std::vector<Key> parse_key_file(std::string_view bytes, std::string& why);

// Reads and parses ticket_key_file: throws with the path and the reason
// (a missing file, a size that is no whole number of keys); warns when the
// file is readable by its group or others (unless `warn` is false).
std::vector<Key> read_key_file(const std::string& path, bool warn = true);

// `message` about ticket_key_file (as read_key_file() throws it) with the
// setting's position: "file:line: tls.ticket_key_file ...".
std::string located(const config::Tls& tls, const std::string& message);

// ---- the master ---------------------------------------------------------------

// Creates the shared block and its first keys (from the file, or random),
// before the first fork.  Throws on a bad key file, as prepare() does.  Calling it again
// (a second Master in one process) keeps the block and its keys.
void start(const config::Tls& tls);

// A reload's fallible half: the new key file's keys (empty without one).
// Throws with the setting's position and the reason, and the running keys
// stay.
std::vector<Key> prepare(const config::Tls& tls);

// A reload's other half, which cannot fail: the file's keys replace the
// running ones; without a file the running keys stay, and only the period
// changes (a switch from a file back to none starts a fresh random key,
// keeping the file's encrypting key for decryption one more period).
void commit(const config::Tls& tls, std::vector<Key> from_file);

// The keys in use and where they came from, as a reload keeps them to
// return to.
struct Running {
    std::vector<Key> keys;
    bool from_file = false;
};

// What restore() returns to, taken before commit().
Running running();

// A reload rolled back: the kept generation's keys are the ones in use
// again, and its `tls` the policy.  Keys the master made on both sides
// stay as they are (a rotation since is the kept generation's own); keys
// a reload read from a file, or dropped for one, are replaced by `kept`.
void restore(const config::Tls& tls, const Running& kept);

// Called by the master's once-a-second tick: rotates when a period is up.
void tick(std::int64_t now_ms);

// A new random encrypting key now; the current one decrypts for one more
// period, the previous one is dropped.  (tick() does this when due.)
void rotate();

// The memfd holding the block (-1 before start()), for an in-place upgrade
// to pass across exec.
int memfd() noexcept;

// The new binary's side of an in-place upgrade: maps the block whose memfd
// the old master passed (taking ownership of `fd`), so that start() keeps
// its keys instead of making new ones.  Throws if `fd` is no such block.
void adopt(int fd);

// In a child of the master, before it runs anything of its own: closes the
// read-write descriptor of the block (the read-only mapping stays, and
// the writable one was never inherited).
void forget_in_child() noexcept;

// ---- any process ----------------------------------------------------------------

// A consistent copy of the keys, the encrypting key first; empty before
// start().  Lock-free: retries while the master writes.
std::vector<Key> current();

// Makes `ctx` issue and accept tickets with the shared keys
// (SSL_CTX_set_tlsext_ticket_key_evp_cb), and turns off its per-process
// session cache, which would make resumption depend on which worker a
// client reaches.  start() must have run.
void attach(SSL_CTX* ctx);

}  // namespace preforkd::tls::tickets
