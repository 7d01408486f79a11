// Reading the PROXY header off a socket: exactly the header is consumed
// (what follows is the request's, or the TLS handshake's), the carried
// address comes back as the client, and proxy_trusted is an allow-list.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "preforkd/config/values.hpp"
#include "preforkd/tls/proxy_socket.hpp"

namespace proxy = preforkd::proxy;

namespace {

sockaddr_storage v4(const char* text)
{
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, text, &in.sin_addr);
    return ss;
}

std::string text_of(const sockaddr_storage& ss)
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
    return buf;
}

std::vector<preforkd::config::Cidr> blocks(std::initializer_list<const char*> texts)
{
    std::vector<preforkd::config::Cidr> out;
    std::string why;
    for (const char* t : texts)
        out.push_back(*preforkd::config::values::parse_cidr(t, why));
    return out;
}

// A connected pair; [0] non-blocking, as an accepted connection is.
struct Pair {
    int server = -1, client = -1;
    Pair()
    {
        int sv[2];
        cr_assert(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        server = sv[0];
        client = sv[1];
        ::fcntl(server, F_SETFL, O_NONBLOCK);
    }
    void send(const std::string& s) const
    {
        cr_assert_eq(::write(client, s.data(), s.size()), ssize_t(s.size()));
    }
    std::string rest() const
    {
        char buf[256];
        ssize_t n = ::recv(server, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, std::size_t(n)) : "";
    }
};

}  // namespace

Test(proxy_socket, the_header_and_nothing_more_is_consumed)
{
    Pair p;
    p.send("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\nGET / HTTP/1.1\r\n");
    proxy::Outcome o = proxy::receive(p.server, v4("127.0.0.1"), 5000, nullptr, nullptr);
    cr_assert(o.ok, "%s", o.error.c_str());
    cr_assert_eq(text_of(o.client), "192.0.2.7");
    cr_assert_eq(ntohs(reinterpret_cast<sockaddr_in&>(o.client).sin_port), 51000);
    cr_assert_eq(p.rest(), "GET / HTTP/1.1\r\n");
}

Test(proxy_socket, a_local_header_keeps_the_peer)
{
    Pair p;
    p.send("PROXY UNKNOWN\r\nGET");
    proxy::Outcome o = proxy::receive(p.server, v4("10.1.2.3"), 5000, nullptr, nullptr);
    cr_assert(o.ok, "%s", o.error.c_str());
    cr_assert_eq(text_of(o.client), "10.1.2.3");
    cr_assert_eq(p.rest(), "GET");
}

Test(proxy_socket, an_unfinished_header_times_out)
{
    Pair p;
    p.send("PROXY TCP4 192.0.2.7 ");
    proxy::Outcome o = proxy::receive(p.server, v4("127.0.0.1"), 200, nullptr, nullptr);
    cr_assert_not(o.ok);
    cr_assert(o.error.find("in time") != std::string::npos, "%s", o.error.c_str());
}

Test(proxy_socket, no_header_and_a_hang_up_are_refused)
{
    Pair p;
    p.send("GET / HTTP/1.1\r\n\r\n");
    cr_assert_not(proxy::receive(p.server, v4("127.0.0.1"), 5000, nullptr, nullptr).ok);
    Pair q;
    q.send("PROXY TCP4");
    ::shutdown(q.client, SHUT_WR);
    proxy::Outcome o = proxy::receive(q.server, v4("127.0.0.1"), 5000, nullptr, nullptr);
    cr_assert_not(o.ok);
    cr_assert(o.error.find("closed") != std::string::npos, "%s", o.error.c_str());
}

Test(proxy_socket, proxy_trusted_is_an_allow_list)
{
    cr_assert(proxy::trusted({}, v4("203.0.113.9")), "empty: any peer");
    auto ten = blocks({"10.0.0.0/8", "::1"});
    cr_assert(proxy::trusted(ten, v4("10.200.0.1")));
    cr_assert_not(proxy::trusted(ten, v4("11.0.0.1")));
    sockaddr_storage unix_peer{};
    unix_peer.ss_family = AF_UNIX;
    cr_assert_not(proxy::trusted(ten, unix_peer), "a unix peer matches no block");
}
