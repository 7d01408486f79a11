// http/conditional.hpp - conditional requests (RFC 9110 13).
//
// Pure functions of the request's fields and the selected representation's
// validators (its strong ETag and modification time).  The responder asks
// check_preconditions() before anything else about a file, and
// if_range_holds() before it honours a Range.
#pragma once

#include <ctime>
#include <string_view>

#include "preforkd/http/request.hpp"

namespace preforkd::http {

enum class Precondition {
    proceed,        // answer as if unconditional
    not_modified,   // 304
    failed,         // 412
};

// RFC 9110 13.2.2 steps 1-4 for a GET or HEAD of an existing representation:
// If-Match (strong comparison; 412 when nothing matches), else
// If-Unmodified-Since (412 when modified after the date); then If-None-Match
// (weak comparison; 304 on a match), else If-Modified-Since (304 when not
// modified since the date).  A date that is not a valid HTTP-date, or
// given in more than one field line, is ignored (RFC 9110 13.1.3, 13.1.4).
Precondition check_preconditions(const Request& req, std::string_view etag, time_t mtime);

// RFC 9110 13.1.5 (step 5): true when there is no If-Range, or when it holds
// - an entity-tag strongly equal to `etag`, or a date exactly equal to
// `mtime`.  False means the Range is ignored and the whole file sent.
bool if_range_holds(const Request& req, std::string_view etag, time_t mtime);

}  // namespace preforkd::http
