// http/date.hpp - HTTP-date formatting and parsing (RFC 9110 section 5.6.7).
//
// format_http_date() is declared in static_file.hpp as well, where the
// connection loop finds it; this header adds the parser used for
// If-Modified-Since and If-Range.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd::http {

// RFC 9110 IMF-fixdate for `t` ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string format_http_date(time_t t);

// The Date field value for now, formatted at most once a second.
const std::string& current_http_date();

// Parses the three formats a recipient must accept: IMF-fixdate, the
// obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
// ("Sun Nov  6 08:49:37 1994").  Empty for anything else, so that a bad
// date makes the condition be ignored, as RFC 9110 13.1.3 asks.
std::optional<time_t> parse_http_date(std::string_view text);

}  // namespace preforkd::http
