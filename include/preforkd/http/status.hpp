// http/status.hpp - a location that answers with the server's status.
//
// A location with `status = "text" | "json" | "auto"` answers GET and HEAD
// with the pool's status instead of a file.  The HTTP layer never reads the
// scoreboard: the body comes from a StatusSource the worker hands in
// through Visit, and this file decides only the format, the method and the
// head.  answer() applies the location's rules first (return, allow/deny,
// Basic auth), so a status page is refused exactly as a file would be.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "preforkd/http/request.hpp"
#include "preforkd/http/response.hpp"

namespace preforkd::http {

// `automatic` is the configuration's "auto" (a C++ keyword).
enum class StatusFormat : std::uint8_t { off, text, json, automatic };

// The format a configuration value names ("off", "text", "json", "auto");
// nothing for any other value.
std::optional<StatusFormat> status_format(std::string_view name) noexcept;

// The format a request gets from a location set to `configured`: a query
// with an `auto` parameter ("?auto", "?auto&refresh=5") asks for the
// machine format whatever the location's, as mod_status does, because that
// is the URL every monitoring plugin written for it requests.
StatusFormat requested_format(StatusFormat configured, std::string_view query) noexcept;

// Content-Type of a format's body.
std::string_view status_media_type(StatusFormat format) noexcept;

// Renders the status in a format (text, json or automatic) as a body.
using StatusSource = std::function<std::string(StatusFormat)>;

// The answer of a status location to `request`: 200 with the body `source`
// renders and Cache-Control: no-store; 405 with Allow for a method other
// than GET and HEAD; 503 when no source is given (a process without a
// scoreboard).  `x` as for finish_response().
Response status_response(const Exchange& x, const Request& request, StatusFormat configured,
                         const StatusSource* source);

}  // namespace preforkd::http
