// test_http_shrink.cpp - a file truncated while it is being sent (suite
// `http`, declared in test_http.cpp): the promised Content-Length can no
// longer be kept, so the connection must end (never a hang, never bytes of
// something else), the worker must survive, and the log must say why.
#include <criterion/criterion.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

Test(http, file_shrinking_mid_send_ends_the_connection_and_is_logged, .timeout = 30)
{
    Daemon d = Daemon::prepare(Options{});
    constexpr std::size_t kSize = 16u << 20;   // beyond what socket buffers hold
    std::string path = d.dir + "/www/big.bin";
    write_file(path, std::string(kSize, 'b'));
    D_ASSERT(d, d.start(), "preforkd did not start");

    int fd = connect_tcp(d.port, 4096);   // a slow reader: a small window
    cr_assert(fd >= 0, "connect failed");
    cr_assert(send_all(fd, request("GET", "/big.bin")));
    std::string got;
    while (got.size() < 64 * 1024) {
        std::optional<std::string> chunk = recv_some(fd, kWait);
        D_ASSERT(d, chunk && !chunk->empty(), "the download stalled after %zu bytes", got.size());
        got += *chunk;
    }
    D_ASSERT(d, got.find("Content-Length: " + std::to_string(kSize)) != std::string::npos,
             "no Content-Length %zu in the head", kSize);
    cr_assert_eq(truncate(path.c_str(), 0), 0, "truncate failed");

    auto [rest, closed] = drain(fd, kWait);
    got += rest;
    close(fd);
    D_ASSERT(d, closed, "the connection was not closed after the file shrank");
    D_ASSERT(d, got.size() < kSize, "all %zu bytes arrived although the file was emptied", kSize);
    D_ASSERT(d, got.find_first_not_of('b', got.find("\r\n\r\n") + 4) == std::string::npos,
             "bytes other than the file's were sent");
    D_ASSERT(d, wait_until([&] { return read_file(d.log).find("file shrank while being sent") !=
                                        std::string::npos; }),
             "no 'file shrank while being sent' line in the log");
    Response again = http_get(d.port, "/x.txt");
    D_ASSERT(d, again.ok && again.status == 200, "the server does not serve after the shrink");
    D_ASSERT(d, read_file(d.log).find("exited on signal") == std::string::npos,
             "a worker died");
    NO_SANITIZER_REPORTS();
}
