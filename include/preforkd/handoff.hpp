// handoff.hpp - a connection passed between processes, with what was read.
//
// A worker that would otherwise wait on a client that is not sending (an
// idle keep-alive connection, a request head still incomplete after the
// first read, a TLS connection before its ClientHello is whole) hands the
// descriptor to the parker, with the bytes it already read and the clock the
// connection runs on.  The parker hands it back through the ready queue once
// a complete head (or ClientHello) has arrived.  A worker that would wait on
// a client that is not reading its answer hands over the rest of the
// answer instead (Kind::sending): its bytes, and the file with the range
// still to send, whose descriptor travels beside the connection's; the
// parker sends it as the client takes it, then holds the connection as an
// idle keep-alive one.  Both directions carry one Parcel per SOCK_SEQPACKET
// message, the descriptors beside it as SCM_RIGHTS.
//
// The deadlines travel in the parcel as absolute CLOCK_MONOTONIC times and
// rules (base timeout, cap, minimum rate), so the parker needs no
// configuration and belongs to no generation: a reload changes what new
// parcels say, never what the parker is.
//
// encode() and decode() are the whole wire format, bytes in and a struct out,
// so the protocol is tested without sockets; send_parcel() and
// receive_parcel() only add the descriptor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "preforkd/fd.hpp"

namespace preforkd::connection {
struct Settings;
}

namespace preforkd::handoff {

enum class Kind : std::uint8_t {
    keepalive = 1,      // worker -> parker: idle between requests
    partial_head = 2,   // worker -> parker: a request head begun, not finished
    tls_hello = 3,      // worker -> parker: a TLS connection before its handshake
    ready = 4,          // parker -> worker: `bytes` hold a complete head or hello
    expired = 5,        // parker -> worker: the head missed its deadline (408)
    sending = 6,        // worker -> parker: the rest of an answer, `bytes` then the file range
};

struct Parcel {
    Kind kind = Kind::keepalive;
    bool tls = false;               // the listener speaks TLS (ready: hand to TLS)
    std::uint32_t listener = 0;     // index of the listener that accepted it
    std::uint32_t requests = 0;     // requests already answered on it
    // When the current wait began: an idle connection's keep-alive wait, a
    // head's first byte.  A ready head that began in the parker after a
    // keep-alive wait there carries when that wait began (the worker's
    // measure of an idle client: connection.hpp, kReparkIdleMs).
    std::int64_t since_ms = 0;
    std::int32_t idle_timeout_ms = 0;      // keep-alive, or the TLS handshake
    std::int32_t head_timeout_ms = 0;      // a head's base deadline ...
    std::int32_t head_timeout_max_ms = 0;  // ... the most its minimum rate extends it to
    std::int32_t min_rate = 0;      // bytes/s that earn one more second (0: none)
    std::uint32_t max_head = 0;     // hand back once this many bytes are held
    // sending: `bytes` begin with answer_size bytes of the answer (the rest
    // of them were read from the client and not yet answered: pipelined
    // requests); then the file range still to send, how long the client may
    // take no byte of it, and whether the connection closes when it is
    // sent (else it waits for its next request).
    std::uint32_t answer_size = 0;
    std::int64_t file_offset = 0;
    std::int64_t file_left = 0;
    std::int32_t send_timeout_ms = 0;
    bool close_after = false;
    std::string remote;             // the client's address, as logs show it
    std::string bytes;              // read and not yet consumed

    // When the parker gives up.  An answer being sent: since (its last
    // progress) + send timeout.  An idle keep-alive connection, or a TLS one
    // before its hello is whole: since + idle timeout.  A head (even one
    // whose first byte is still to come on a new connection): the
    // connection loop's rule, since + head timeout, one more second per
    // min_rate bytes held, never beyond since + head timeout max.
    std::int64_t deadline_ms() const noexcept;
    bool operator==(const Parcel&) const = default;
};

// The deadline of a request head, in the manner of Apache's
// RequestReadTimeout header=20-40,MinRate=500: `timeout_ms` after `since_ms`,
// one more second for every `min_rate` bytes received (none when min_rate
// is 0), never beyond `timeout_max_ms` after `since_ms`.  The one rule for
// a head a worker waits on and a head the parker holds.
std::int64_t head_deadline_ms(std::int64_t since_ms, std::int32_t timeout_ms,
                              std::int32_t timeout_max_ms, std::int32_t min_rate,
                              std::size_t bytes) noexcept;

// The parcel a worker hands a connection to the parker with, as far as
// every kind agrees: the listener, the requests answered, when the wait
// began, the wait's own timeout (keep-alive, or the TLS handshake) and the
// head rules of `s`; the caller adds what is particular (bytes, tls, the
// rest of an answer).  One builder, so a rule added to the settings reaches
// every parcel.
Parcel parcel_for(Kind kind, const connection::Settings& s, int listener, std::uint32_t requests,
                  std::int64_t since_ms, std::int32_t idle_timeout_ms, std::string remote);

// The largest parcel: a head of up to 64 KiB plus the fixed part and the
// address.  A SOCK_SEQPACKET message must fit the socket buffer whole.
inline constexpr std::size_t kMaxParcel = 65536 + 512;

std::string encode(const Parcel& p);

// nullopt unless `wire` is exactly one well-formed parcel.
std::optional<Parcel> decode(std::string_view wire);

// Sends `p` with `fd` beside it on a SOCK_SEQPACKET socket, without blocking,
// and `file` after it for Kind::sending.  False (errno set; EAGAIN when the
// queue is full) if nothing was sent; the caller still owns the descriptors
// either way.
bool send_parcel(int sock, int fd, const Parcel& p, int file = -1);

struct Received {
    Fd fd;
    Parcel parcel;
    Fd file;   // Kind::sending: the file the rest of the answer comes from
};

// Receives one parcel without blocking.  nullopt with errno EAGAIN when the
// queue is empty (another worker won the race), EPIPE when no process holds
// the sending end any more, or EPROTO for a message that is not a parcel
// with its descriptors (two for Kind::sending, else one; any descriptor that
// came with it is closed).
std::optional<Received> receive_parcel(int sock);

}  // namespace preforkd::handoff
