// config/values.hpp - the values of site and location keys, checked and
// printed.  Pure functions over strings, so each rule is one unit test:
// a header line against HTTP field syntax, a CIDR, an expiry, a server name,
// a location path.  Each parser returns the value or a reason ("why") that
// the loader puts after "file:line: key".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "preforkd/config.hpp"

namespace preforkd::config::values {

// "" when `line` is `token ":" OWS field-value OWS` (RFC 9110 section 5),
// without CR, LF or NUL, naming no field the server itself owns
// (Content-Length, Transfer-Encoding, Connection ...); else why not.
std::string header_problem(std::string_view line);

// "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "all".  Host bits
// below the prefix are an error, as they hide a typo.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& why);

// "30d", "12h", "15m", "600s" or "600", "off", "epoch", "max".
std::optional<Expires> parse_expires(std::string_view text, std::string& why);
std::string expires_text(const Expires& e);

// A server name lower-cased with a trailing dot removed: "Example.ORG." ->
// "example.org"; "*.example.net" (a leading wildcard label only); an IPv4
// address or a bracketed IPv6 one.
std::optional<std::string> server_name(std::string_view text, std::string& why);

// "/static/" (prefix) or "= /healthz" (exact) into a Location's path/exact.
bool parse_location_path(std::string_view text, Location& out, std::string& why);
std::string location_path_text(const Location& l);

// A redirect target or error page: no control characters, no spaces.
bool is_clean_uri(std::string_view text);

}  // namespace preforkd::config::values
