// The handoff protocol between workers and the parker: parcels as bytes in,
// a struct out; the descriptor beside them over a real SOCK_SEQPACKET pair.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "preforkd/connection.hpp"
#include "preforkd/handoff.hpp"

using namespace preforkd;
using namespace preforkd::handoff;

namespace {

Parcel sample()
{
    Parcel p;
    p.kind = Kind::partial_head;
    p.tls = true;
    p.listener = 3;
    p.requests = 7;
    p.since_ms = 123456789012;
    p.idle_timeout_ms = 5000;
    p.head_timeout_ms = 20000;
    p.head_timeout_max_ms = 40000;
    p.min_rate = 500;
    p.max_head = 8192;
    p.remote = "2001:db8::1";
    p.bytes = std::string("GET / HTTP/1.1\r\nHost: a\0b", 25);
    return p;
}

}  // namespace

Test(handoff, every_field_round_trips)
{
    Parcel p = sample();
    auto back = decode(encode(p));
    cr_assert(back.has_value());
    cr_assert(*back == p, "a decoded parcel differs from the one encoded");
    p.kind = Kind::ready;
    p.tls = false;
    p.bytes.clear();
    cr_assert(*decode(encode(p)) == p);
}

// The rest of an answer: its bytes first (answer_size of them), pipelined
// input after them, a file range, the send timeout and whether to close.
// Every parcel a worker sends is built by one function from its settings:
// the parker's deadlines are the worker's rules, whichever wait it was.
Test(handoff, a_parcel_carries_the_settings_head_rules)
{
    connection::Settings s;
    s.header_timeout_ms = 11000;
    s.header_timeout_max_ms = 33000;
    s.header_min_rate = 250;
    s.limits.max_header_size = 4096;
    s.keepalive_timeout_ms = 7000;
    Parcel p = parcel_for(Kind::tls_hello, s, 2, 5, 1000, 9000, "192.0.2.7");
    cr_assert(p.kind == Kind::tls_hello);
    cr_assert_eq(p.listener, 2u);
    cr_assert_eq(p.requests, 5u);
    cr_assert_eq(p.since_ms, 1000);
    cr_assert_eq(p.idle_timeout_ms, 9000, "the wait's own timeout, not keep-alive's");
    cr_assert_eq(p.head_timeout_ms, 11000);
    cr_assert_eq(p.head_timeout_max_ms, 33000);
    cr_assert_eq(p.min_rate, 250);
    cr_assert_eq(p.max_head, 4096u);
    cr_assert_eq(p.remote, "192.0.2.7");
    cr_assert(!p.tls && p.bytes.empty() && p.answer_size == 0 && p.file_left == 0,
              "what is particular is the caller's to add");
    cr_assert_eq(p.deadline_ms(), 1000 + 9000);
}

Test(handoff, an_answers_rest_round_trips_and_runs_on_the_send_timeout)
{
    Parcel p = sample();
    p.kind = Kind::sending;
    p.bytes = "HTTP/1.1 200 OK\r\n\r\nGET /next HTTP/1.1\r\n";
    p.answer_size = 19;
    p.file_offset = 1LL << 33;
    p.file_left = 4194304;
    p.send_timeout_ms = 60000;
    p.close_after = true;
    auto back = decode(encode(p));
    cr_assert(back.has_value());
    cr_assert(*back == p, "a decoded answer's rest differs from the one encoded");
    cr_assert_eq(p.deadline_ms(), p.since_ms + 60000);
    p.answer_size = std::uint32_t(p.bytes.size() + 1);
    cr_assert(!decode(encode(p)), "answer bytes beyond the parcel's bytes were accepted");
}

Test(handoff, an_answers_rest_travels_with_its_file)
{
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    int conn[2], file[2];
    cr_assert_eq(pipe(conn), 0);
    cr_assert_eq(pipe(file), 0);
    Parcel p = sample();
    p.kind = Kind::sending;
    p.answer_size = 3;
    cr_assert(send_parcel(pair[0], conn[1], p, file[1]), "send_parcel: %s", strerror(errno));
    auto got = receive_parcel(pair[1]);
    cr_assert(got.has_value(), "receive_parcel: %s", strerror(errno));
    cr_assert(got->parcel == p);
    cr_assert_eq(write(got->file.get(), "f", 1), 1, "the file's descriptor does not work");
    char c = 0;
    cr_assert_eq(read(file[0], &c, 1), 1);
    cr_assert_eq(c, 'f');
    // Without its file, an answer's rest is refused.
    cr_assert(send_parcel(pair[0], conn[1], p));
    errno = 0;
    cr_assert(!receive_parcel(pair[1]), "an answer's rest without its file was accepted");
    cr_assert_eq(errno, EPROTO);
    for (int fd : {conn[0], conn[1], file[0], file[1], pair[0], pair[1]})
        close(fd);
}

Test(handoff, malformed_messages_are_refused)
{
    std::string wire = encode(sample());
    cr_assert(!decode(wire.substr(0, wire.size() - 1)), "a short message was accepted");
    cr_assert(!decode(wire + "x"), "a padded message was accepted");
    cr_assert(!decode(""), "an empty message was accepted");
    std::string bad_magic = wire;
    bad_magic[0] ^= 1;
    cr_assert(!decode(bad_magic), "a wrong magic was accepted");
    std::string bad_kind = wire;
    bad_kind[4] = 7;
    cr_assert(!decode(bad_kind), "an unknown kind was accepted");
    bad_kind[4] = 0;
    cr_assert(!decode(bad_kind), "kind 0 was accepted");
}

Test(handoff, idle_deadline_is_the_idle_timeout)
{
    Parcel p;
    p.kind = Kind::keepalive;
    p.since_ms = 1000;
    p.idle_timeout_ms = 5000;
    p.head_timeout_ms = 20000;
    cr_assert_eq(p.deadline_ms(), 6000);
    p.kind = Kind::tls_hello;
    p.bytes = "\x16\x03\x01";
    cr_assert_eq(p.deadline_ms(), 6000, "a TLS hello waits on the handshake timeout");
    p.kind = Kind::partial_head;
    p.bytes.clear();
    cr_assert_eq(p.deadline_ms(), 21000, "a new connection's silence runs on the head timeout");
}

Test(handoff, head_deadline_grows_with_the_rate_up_to_its_cap)
{
    Parcel p;
    p.kind = Kind::partial_head;
    p.since_ms = 1000;
    p.head_timeout_ms = 20000;
    p.head_timeout_max_ms = 40000;
    p.min_rate = 500;
    p.bytes = std::string(10, 'x');
    cr_assert_eq(p.deadline_ms(), 21020, "10 bytes earn 20 ms at 500 bytes/s");
    p.bytes = std::string(5000, 'x');
    cr_assert_eq(p.deadline_ms(), 31000, "5000 bytes earn 10 s");
    p.bytes = std::string(50000, 'x');
    cr_assert_eq(p.deadline_ms(), 41000, "the extension stops at head_timeout_max");
    p.min_rate = 0;
    cr_assert_eq(p.deadline_ms(), 21000, "no minimum rate, no extension");
}

Test(handoff, a_descriptor_travels_with_its_parcel)
{
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    Parcel p = sample();
    cr_assert(send_parcel(pair[0], pipefd[1], p), "send_parcel: %s", strerror(errno));
    close(pipefd[1]);
    auto got = receive_parcel(pair[1]);
    cr_assert(got.has_value(), "receive_parcel: %s", strerror(errno));
    cr_assert(got->parcel == p);
    cr_assert_eq(write(got->fd.get(), "ok", 2), 2, "the passed descriptor does not work");
    got->fd.reset();
    char buf[4];
    cr_assert_eq(read(pipefd[0], buf, sizeof buf), 2);
    cr_assert(fcntl(pipefd[0], F_GETFD) >= 0);
    close(pipefd[0]);

    errno = 0;
    cr_assert(!receive_parcel(pair[1]), "an empty queue gave a parcel");
    cr_assert_eq(errno, EAGAIN, "an empty queue is EAGAIN, got %s", strerror(errno));
    close(pair[0]);
    close(pair[1]);
}

Test(handoff, a_message_without_a_descriptor_is_refused)
{
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    std::string wire = encode(sample());
    cr_assert_eq(send(pair[0], wire.data(), wire.size(), 0), ssize_t(wire.size()));
    errno = 0;
    cr_assert(!receive_parcel(pair[1]));
    cr_assert_eq(errno, EPROTO, "got %s", strerror(errno));
    close(pair[0]);
    close(pair[1]);
}

Test(handoff, a_queue_whose_senders_are_gone_says_epipe)
{
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    close(pair[0]);
    errno = 0;
    cr_assert(!receive_parcel(pair[1]));
    cr_assert_eq(errno, EPIPE, "got %s", strerror(errno));
    close(pair[1]);
}
