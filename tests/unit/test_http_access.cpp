// test_http_access.cpp - allow/deny rules on client addresses.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/un.h>

#include "preforkd/http/access.hpp"

using namespace preforkd::http;

namespace {

ClientAddress v4(const char* text)
{
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1);
    return client_address(ss);
}

ClientAddress v6(const char* text)
{
    sockaddr_storage ss{};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    return client_address(ss);
}

std::vector<AccessRule> rules(std::initializer_list<std::pair<bool, const char*>> list)
{
    std::vector<AccessRule> out;
    for (auto [allow, text] : list) {
        std::optional<AccessRule> r = parse_access_rule(allow, text);
        cr_assert(r.has_value(), "\"%s\" does not parse", text);
        out.push_back(*r);
    }
    return out;
}

}  // namespace

Test(http_access, parses_addresses_networks_and_all)
{
    for (const char* good : {"10.0.0.0/8", "192.0.2.7", "0.0.0.0/0", "::1", "2001:db8::/32", "all",
                             "::/0", "::ffff:10.0.0.0/104"})
        cr_expect(parse_access_rule(true, good).has_value(), "refused \"%s\"", good);
    for (const char* bad : {"", "10.0.0.0/33", "10.0.0.1/8", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                            "host.example", "10.0.0", "2001:db8::1/32", "All"})
        cr_expect(!parse_access_rule(true, bad).has_value(), "accepted \"%s\"", bad);
}

Test(http_access, first_match_wins)
{
    auto list = rules({{false, "10.1.0.0/16"}, {true, "10.0.0.0/8"}, {true, "::1"}});
    cr_expect(!access_allowed(list, v4("10.1.2.3")));
    cr_expect(access_allowed(list, v4("10.2.3.4")));
    cr_expect(access_allowed(list, v6("::1")));
    cr_expect(!access_allowed(list, v4("192.0.2.1")), "an allow list admits only its own");
    cr_expect(!access_allowed(list, v6("2001:db8::1")));
}

Test(http_access, deny_only_lists_admit_the_rest)
{
    auto list = rules({{false, "192.0.2.0/24"}, {false, "2001:db8::/32"}});
    cr_expect(!access_allowed(list, v4("192.0.2.200")));
    cr_expect(!access_allowed(list, v6("2001:db8:1::5")));
    cr_expect(access_allowed(list, v4("198.51.100.1")));
    cr_expect(access_allowed(list, v6("::1")));
}

Test(http_access, ipv4_rules_match_mapped_clients_of_a_dual_stack_listener)
{
    auto list = rules({{true, "10.0.0.0/8"}, {false, "all"}});
    cr_expect(access_allowed(list, v6("::ffff:10.9.8.7")));
    cr_expect(!access_allowed(list, v6("::ffff:11.0.0.1")));
}

Test(http_access, unix_socket_clients_match_only_all)
{
    sockaddr_storage ss{};
    ss.ss_family = AF_UNIX;
    ClientAddress local = client_address(ss);
    cr_expect(!local.known);
    cr_expect(!access_allowed(rules({{true, "0.0.0.0/0"}, {true, "::/0"}}), local));
    cr_expect(access_allowed(rules({{false, "0.0.0.0/0"}}), local));
    cr_expect(!access_allowed(rules({{false, "all"}}), local));
}
