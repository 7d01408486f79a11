// test_proxy_protocol.cpp - listeners with proxy_protocol = true, spoken to
// from a raw socket as a load balancer would: the address a v1 or v2 header
// carries is the client in the access log and in allow/deny, also for a
// connection that went through the parker; a missing or malformed header,
// or one from a peer outside proxy_trusted, closes the connection without
// a response.
#include <criterion/criterion.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(proxy_protocol, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

// One site whose /private/ denies 192.0.2.0/24 (a documentation block no
// test connection really comes from), on one listener with `options`.
Daemon behind_proxy(const std::string& options, Options o = {})
{
    Daemon d = Daemon::prepare(o);
    make_dir(d.path("www/private"));
    write_file(d.path("www/private/x"), "private\n");
    o.extra += "sites = ( { names = [ \"a.test\" ]; root = \"www\";\n"
               "  locations = ( { path = \"/private/\"; deny = [ \"192.0.2.0/24\" ]; } ); } );\n";
    std::string text = config_text(o);
    std::string plain = "listen = ( \"127.0.0.1:0\" );";
    text.replace(text.find(plain), plain.size(),
                 "listen = ( { address = \"127.0.0.1:0\"; proxy_protocol = true; " + options +
                     " } );");
    d.write_config_text(text);
    start(d);
    return d;
}

std::string v1(const std::string& source)
{
    return "PROXY TCP4 " + source + " 127.0.0.1 51000 80\r\n";
}

// A v2 PROXY header for TCP over IPv6 from 2001:db8::7 port 51000.
std::string v2_from_2001_db8_7()
{
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += char(0x21);   // version 2, PROXY
    h += char(0x21);   // TCP over IPv6
    h += char(0);
    h += char(36);
    std::string source(16, '\0'), destination(16, '\0');
    source[0] = char(0x20), source[1] = char(0x01), source[2] = char(0x0d),
    source[3] = char(0xb8), source[15] = char(7);
    destination[15] = char(1);
    h += source + destination;
    h += char(51000 >> 8), h += char(51000 & 0xff), h += char(0), h += char(80);
    return h;
}

std::string get(const std::string& path)
{
    return "GET " + path + " HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
}

// Sends `bytes` on a fresh connection and reads one response.
Response proxied_exchange(const Daemon& d, const std::string& bytes)
{
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect failed");
    D_ASSERT(d, send_all(fd, bytes), "send failed");
    std::string buffer;
    Response r = read_response(fd, buffer);
    ::close(fd);
    return r;
}

// The access-log line for `path`, once written.
std::string access_line(const Daemon& d, const std::string& path)
{
    std::string found;
    wait_until([&] {
        for (const std::string& line : lines_of(read_file(d.path("access.log"))))
            if (line.find(" " + path + " ") != std::string::npos)
                return !(found = line).empty();
        return false;
    });
    return found;
}

// Sends `bytes` and expects the connection closed with nothing said.
void closed_without_answer(const Daemon& d, const std::string& bytes, const char* what)
{
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect failed");
    send_all(fd, bytes);
    std::string all;
    for (;;) {
        std::optional<std::string> got = recv_some(fd, kWait);
        D_ASSERT(d, got.has_value(), "%s: the connection stayed open", what);
        if (got->empty())
            break;
        all += *got;
    }
    ::close(fd);
    D_ASSERT(d, all.empty(), "%s: answered '%s'", what, all.c_str());
}

}  // namespace

Test(proxy_protocol, a_v1_header_names_the_client_in_the_access_log) {
    Daemon d = behind_proxy("");
    Response r = proxied_exchange(d, v1("203.0.113.9") + get("/x.txt?v1"));
    D_ASSERT(d, r.ok && r.status == 200, "%s '%s'", r.error.c_str(), r.status_line.c_str());
    std::string line = access_line(d, "/x.txt?v1");
    D_ASSERT(d, line.rfind("203.0.113.9 ", 0) == 0, "access log line: '%s'", line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(proxy_protocol, a_v2_header_names_an_ipv6_client) {
    Daemon d = behind_proxy("");
    Response r = proxied_exchange(d, v2_from_2001_db8_7() + get("/x.txt?v2"));
    D_ASSERT(d, r.ok && r.status == 200, "%s '%s'", r.error.c_str(), r.status_line.c_str());
    std::string line = access_line(d, "/x.txt?v2");
    D_ASSERT(d, line.rfind("2001:db8::7 ", 0) == 0, "access log line: '%s'", line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(proxy_protocol, deny_rules_judge_the_carried_address) {
    Daemon d = behind_proxy("");
    Response r = proxied_exchange(d, v1("192.0.2.7") + get("/private/x"));
    D_ASSERT(d, r.status == 403, "a denied client behind the proxy: '%s'", r.status_line.c_str());
    r = proxied_exchange(d, v1("203.0.113.9") + get("/private/x"));
    D_ASSERT(d, r.status == 200 && r.body == "private\n", "an allowed client: '%s'",
             r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(proxy_protocol, a_missing_or_malformed_header_closes_the_connection) {
    Daemon d = behind_proxy("");
    closed_without_answer(d, get("/x.txt"), "no header");
    closed_without_answer(d, "PROXY TCP4 192.0.2.7 nonsense\r\n" + get("/x.txt"), "a bad v1 line");
    closed_without_answer(d, std::string("\r\n\r\n\0\r\nQUIT\n\x2f\x11\x00\x0c", 16) + get("/x.txt"),
                          "a v2 header with an unknown command");
    Response r = proxied_exchange(d, v1("203.0.113.9") + get("/x.txt"));
    D_ASSERT(d, r.status == 200, "the listener still serves good headers: '%s'",
             r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(proxy_protocol, a_header_from_an_untrusted_peer_closes_the_connection) {
    Daemon d = behind_proxy("proxy_trusted = [ \"10.0.0.0/8\" ];");
    closed_without_answer(d, v1("203.0.113.9") + get("/x.txt"), "a peer outside proxy_trusted");
    auto said = d.wait_log("outside proxy_trusted");
    D_ASSERT(d, said.has_value(), "the refusal was not logged");
    NO_SANITIZER_REPORTS();
}

Test(proxy_protocol, a_trusted_peer_is_served) {
    Daemon d = behind_proxy("proxy_trusted = [ \"127.0.0.0/8\", \"10.0.0.0/8\" ];");
    Response r = proxied_exchange(d, v1("203.0.113.9") + get("/x.txt"));
    D_ASSERT(d, r.status == 200, "'%s'", r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// With one worker, a second client served while the first one's head is
// incomplete proves the first was parked; its request is then judged and
// logged by the address its PROXY header carried.
Test(proxy_protocol, a_parked_connection_keeps_the_carried_address) {
    Daemon d = behind_proxy("", Options{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1});
    int slow = connect_tcp(d.port);
    D_ASSERT(d, slow >= 0, "connect failed");
    D_ASSERT(d, send_all(slow, v1("192.0.2.7") + "GET /private/x?parked HTTP/1.1\r\nHost: a.te"),
             "send failed");
    Response other = proxied_exchange(d, v1("203.0.113.9") + get("/x.txt?other"));
    D_ASSERT(d, other.status == 200, "a second client was not served while the first was parked: '%s'",
             other.status_line.c_str());
    D_ASSERT(d, send_all(slow, "st\r\nConnection: close\r\n\r\n"), "send failed");
    std::string buffer;
    Response r = read_response(slow, buffer);
    ::close(slow);
    D_ASSERT(d, r.status == 403, "the parked request from a denied client: '%s'",
             r.status_line.c_str());
    std::string line = access_line(d, "/private/x?parked");
    D_ASSERT(d, line.rfind("192.0.2.7 ", 0) == 0, "access log line: '%s'", line.c_str());
    NO_SANITIZER_REPORTS();
}
