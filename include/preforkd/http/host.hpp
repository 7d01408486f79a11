// http/host.hpp - the Host field and absolute-form authorities, checked and normalised.
//
// RFC 9112 3.2 and RFC 3986 3.2.2: host = IP-literal / IPv4address /
// reg-name, then an optional ":" port of digits.  The parser calls
// valid_authority() on every Host value and every absolute-form authority;
// the site table matches on host_name(), the form names are compared in.
#pragma once

#include <string>
#include <string_view>

namespace preforkd::http {

// True when `authority` is a host with an optional numeric port: a reg-name
// (unreserved, sub-delims, pct-encoded), a dotted IPv4 address, or an IPv6
// address in brackets.  Empty is false (RFC 9110 4.2.1), and so are
// "localhost:80x", "[4712::abcd::]", "4714::abcd:8001" and ":80:80".
bool valid_authority(std::string_view authority) noexcept;

// The name a site is matched on: lower case, port and one trailing dot
// removed ("WWW.Example.ORG.:8080" -> "www.example.org", "[::1]:80" ->
// "[::1]").  `authority` must have passed valid_authority().
std::string host_name(std::string_view authority);

}  // namespace preforkd::http
