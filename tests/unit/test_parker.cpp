// The parker: where a request head or a TLS ClientHello ends (bytes in, a
// verdict out), and the real loop in a child process over socketpairs -
// a head completed in the parker comes back through the ready queue with
// every byte; an expired head comes back marked for its 408; an idle one is
// closed silently.
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "preforkd/handoff.hpp"
#include "preforkd/parker.hpp"

using namespace preforkd;
using preforkd::parker::Progress;

namespace {

struct HeadCase {
    const char* bytes;
    std::size_t max;
    Progress want;
};

std::string hello_record(std::size_t hello_len, std::size_t record_len)
{
    std::string r = "\x16\x03\x01";
    r += char(record_len >> 8);
    r += char(record_len & 0xff);
    std::string body = "\x01";
    body += char(hello_len >> 16);
    body += char((hello_len >> 8) & 0xff);
    body += char(hello_len & 0xff);
    body += std::string(hello_len, 'h');
    return r + body.substr(0, record_len);
}

}  // namespace

Test(parker, where_a_head_ends)
{
    const HeadCase cases[] = {
        {"", 8192, Progress::waiting},
        {"GET / HTTP/1.1\r\n", 8192, Progress::waiting},
        {"GET / HTTP/1.1\r\nHost: a\r\n", 8192, Progress::waiting},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 8192, Progress::complete},
        {"\r\n\r\nGET / HTTP/1.1\r\n", 8192, Progress::waiting},   // leading empty lines
        {"\r\n", 8192, Progress::waiting},
        {"GET / HTTP/1.1\nHost: a\n\n", 8192, Progress::complete},  // bare LF: the parser's 400
        {"GET / HTTP/1.1\r\nHost: aaaaaaaa", 16, Progress::complete},  // full: the parser's 431
    };
    for (const HeadCase& c : cases)
        cr_expect_eq(parker::head_progress(c.bytes, c.max), c.want, "'%s'", c.bytes);
}

Test(parker, where_a_client_hello_ends)
{
    std::string whole = hello_record(200, 204);
    cr_assert_eq(parker::hello_progress(whole), Progress::complete);
    cr_assert_eq(parker::hello_progress(whole.substr(0, 100)), Progress::waiting);
    cr_assert_eq(parker::hello_progress(whole.substr(0, 3)), Progress::waiting);
    cr_assert_eq(parker::hello_progress(""), Progress::waiting);
    // A hello split over two records: complete only with the second.
    std::string first = hello_record(300, 150);
    std::string rest(4 + 300 - 150, 'h');   // the hello's remaining bytes
    std::string second = "\x16\x03\x01";
    second += char(rest.size() >> 8);
    second += char(rest.size() & 0xff);
    second += rest;
    cr_assert_eq(parker::hello_progress(first), Progress::waiting);
    cr_assert_eq(parker::hello_progress(first + second.substr(0, 20)), Progress::waiting);
    cr_assert_eq(parker::hello_progress(first + second), Progress::complete);
    // Not TLS at all: the worker answers it, so it is handed back at once.
    cr_assert_eq(parker::hello_progress("GET / HTTP/1.1\r\n"), Progress::complete);
}

// ---- the loop, in a child ------------------------------------------------------

namespace {

struct Running {
    pid_t pid;
    int park;    // our end: send parcels here
    int ready;   // our end: receive parcels here
};

Running start_parker()
{
    int park[2], ready[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, park), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ready), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(park[0]);
        close(ready[1]);
        parker::Context c;
        c.park = park[1];
        c.ready = ready[0];
        sigset_t none;
        sigemptyset(&none);
        c.wait_mask = &none;
        parker::run(c);
        _exit(0);
    }
    close(park[1]);
    close(ready[0]);
    return {pid, park[0], ready[1]};
}

void stop(const Running& r)
{
    kill(r.pid, SIGKILL);
    waitpid(r.pid, nullptr, 0);
    close(r.park);
    close(r.ready);
}

handoff::Parcel head_parcel(const std::string& bytes, int head_timeout_ms)
{
    handoff::Parcel p;
    p.kind = handoff::Kind::partial_head;
    p.listener = 1;
    p.since_ms = scoreboard::now_ms();
    p.idle_timeout_ms = 5000;
    p.head_timeout_ms = head_timeout_ms;
    p.head_timeout_max_ms = head_timeout_ms;
    p.max_head = 8192;
    p.remote = "127.0.0.1";
    p.bytes = bytes;
    return p;
}

// Waits (bounded) for a parcel on the ready queue.
std::optional<handoff::Received> wait_ready(int ready, int timeout_ms)
{
    pollfd p{ready, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1)
        return std::nullopt;
    return handoff::receive_parcel(ready);
}

std::string read_to_eof(int fd, int timeout_ms)
{
    std::string got;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) != 1)
            return got + "<timeout>";
        char buf[512];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return got;
        got.append(buf, size_t(n));
    }
}

}  // namespace

Test(parker, a_head_completed_in_the_parker_comes_back_whole, .timeout = 30)
{
    Running r = start_parker();
    int conn[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, conn), 0);
    handoff::Parcel begun = head_parcel("GET /x HTTP/1.1\r\nHo", 20000);
    cr_assert(handoff::send_parcel(r.park, conn[1], begun));
    close(conn[1]);
    cr_assert(!wait_ready(r.ready, 200), "an incomplete head was handed back");
    cr_assert_eq(write(conn[0], "st: a\r\n", 7), 7);
    cr_assert(!wait_ready(r.ready, 200), "an incomplete head was handed back");
    cr_assert_eq(write(conn[0], "\r\n", 2), 2);
    auto got = wait_ready(r.ready, 10000);
    cr_assert(got.has_value(), "the completed head never came back");
    cr_assert_eq(got->parcel.kind, handoff::Kind::ready);
    cr_assert_str_eq(got->parcel.bytes.c_str(), "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(got->parcel.listener, 1u);
    cr_assert_str_eq(got->parcel.remote.c_str(), "127.0.0.1");
    cr_assert_eq(got->parcel.since_ms, begun.since_ms, "a head begun in a worker keeps its start");
    // The descriptor that came back is the same connection.
    cr_assert_eq(write(got->fd.get(), "pong", 4), 4);
    char buf[8] = {};
    cr_assert_eq(read(conn[0], buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "pong");
    close(conn[0]);
    stop(r);
}

Test(parker, an_expired_head_goes_back_for_its_408_and_an_idle_one_is_closed, .timeout = 30)
{
    Running r = start_parker();
    int head[2], idle[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, head), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, idle), 0);
    cr_assert(handoff::send_parcel(r.park, head[1], head_parcel("GET / HTTP/1.1\r\n", 300)));
    handoff::Parcel k = head_parcel("", 20000);
    k.kind = handoff::Kind::keepalive;
    k.idle_timeout_ms = 300;
    cr_assert(handoff::send_parcel(r.park, idle[1], k));
    close(head[1]);
    close(idle[1]);
    auto expired = wait_ready(r.ready, 10000);
    cr_assert(expired.has_value(), "the expired head did not come back");
    cr_assert_eq(expired->parcel.kind, handoff::Kind::expired);
    cr_assert_str_eq(expired->parcel.bytes.c_str(), "GET / HTTP/1.1\r\n");
    expired->fd.reset();   // the worker's 408 is connection.cpp's, tested there
    std::string silence = read_to_eof(idle[0], 10000);
    cr_assert(silence.empty(), "an expired idle connection got '%s'", silence.c_str());
    cr_assert(!wait_ready(r.ready, 100), "an expired idle connection was handed to a worker");
    close(head[0]);
    close(idle[0]);
    stop(r);
}

Test(parker, a_parked_keepalive_connection_resumes_with_its_next_request, .timeout = 30)
{
    Running r = start_parker();
    int conn[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, conn), 0);
    handoff::Parcel k = head_parcel("", 20000);
    k.kind = handoff::Kind::keepalive;
    k.requests = 4;
    k.since_ms = scoreboard::now_ms() - 5000;   // idle for 5 s already
    k.idle_timeout_ms = 60000;
    cr_assert(handoff::send_parcel(r.park, conn[1], k));
    close(conn[1]);
    std::string req = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(write(conn[0], req.data(), req.size()), ssize_t(req.size()));
    auto got = wait_ready(r.ready, 10000);
    cr_assert(got.has_value(), "the next request never came back");
    cr_assert_str_eq(got->parcel.bytes.c_str(), req.c_str());
    cr_assert_eq(got->parcel.requests, 4u, "the request count was lost");
    cr_assert_eq(got->parcel.since_ms, k.since_ms,
                 "the ready head should say when the keep-alive wait began (%lld), not %lld",
                 (long long)k.since_ms, (long long)got->parcel.since_ms);
    close(conn[0]);
    stop(r);
}

// A client that stopped reading its answer: the parker sends the rest (the
// answer's bytes, then a range of the file that came along) as the client
// reads, then hands back the request the client had pipelined after it.
Test(parker, the_rest_of_an_answer_is_sent_and_a_pipelined_request_comes_back, .timeout = 30)
{
    Running r = start_parker();
    int conn[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, conn), 0);
    FILE* file = tmpfile();
    cr_assert(file);
    // More than a socket buffer holds, so the parker has to wait for the
    // client to read.
    std::string content(3000000, 'x');
    for (size_t i = 0; i < content.size(); ++i)
        content[i] = char('a' + i % 26);
    cr_assert_eq(fwrite(content.data(), 1, content.size(), file), content.size());
    fflush(file);
    const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    handoff::Parcel p = head_parcel("", 20000);
    p.kind = handoff::Kind::sending;
    p.requests = 1;
    p.send_timeout_ms = 60000;
    p.bytes = "HTTP/1.1 200 OK\r\n\r\n" + next;
    p.answer_size = 19;
    p.file_offset = 5;
    p.file_left = 2900000;
    cr_assert(handoff::send_parcel(r.park, conn[1], p, fileno(file)), "send_parcel: %s", strerror(errno));
    close(conn[1]);
    fclose(file);
    cr_assert(!wait_ready(r.ready, 200), "the connection came back before its answer was out");
    std::string want = "HTTP/1.1 200 OK\r\n\r\n" + content.substr(5, 2900000);
    std::string got;
    while (got.size() < want.size()) {
        pollfd pf{conn[0], POLLIN, 0};
        cr_assert_eq(poll(&pf, 1, 10000), 1, "the answer stopped after %zu bytes", got.size());
        char buf[16384];
        ssize_t n = read(conn[0], buf, sizeof buf);
        cr_assert(n > 0, "the connection ended after %zu bytes", got.size());
        got.append(buf, size_t(n));
    }
    cr_assert(got == want, "the answer's rest differs (%zu bytes)", got.size());
    auto back = wait_ready(r.ready, 10000);
    cr_assert(back.has_value(), "the pipelined request never came back");
    cr_assert_eq(back->parcel.kind, handoff::Kind::ready);
    cr_assert_str_eq(back->parcel.bytes.c_str(), next.c_str());
    cr_assert_eq(back->parcel.requests, 1u);
    close(conn[0]);
    stop(r);
}
