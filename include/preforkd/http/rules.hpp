// http/rules.hpp - answering a request under its site's and location's rules.
//
// answer() is the request path between the parser and the static-file
// responder: it finds the location, applies the rules in nginx's order
// (return, hidden segments, allow/deny, Basic auth), lets respond() serve
// the file (or status_response() the status page), then decorates the answer (error page, the site's headers,
// Cache-Control and Expires).  A location with no rules besides the
// default hidden-segment check costs one scan of the raw path.
#pragma once

#include <string>
#include <string_view>

#include "preforkd/http/access.hpp"
#include "preforkd/http/request.hpp"
#include "preforkd/http/site.hpp"
#include "preforkd/http/static_file.hpp"
#include "preforkd/http/status.hpp"

namespace preforkd::http {

// What a request brings besides its head.
struct Visit {
    const VirtualSite& site;
    const ClientAddress& client;
    bool close = false;                 // as for respond()
    UnreadBody body = UnreadBody::close_connection;
    std::string_view scheme = "http";
    // Renders a status location's body (status.hpp); unset: such a
    // location answers 503.
    const StatusSource* status = nullptr;
};

// The response for `request` on `visit.site`.  A refusal (401, 403, 404
// from a rule or from the file system) carries its reason in
// Response::refusal for the diagnostic log.
Response answer(const Request& request, const Visit& visit);

// True when the decoded, normalised `path` has a segment starting with '.'
// past its first `open` bytes, other than a leading "/.well-known/".
bool hidden_path(std::string_view path, std::size_t open = 0) noexcept;

// `url` with $host, $request_uri, $uri and $scheme replaced; every byte
// that may not appear in a header value unescaped (controls, space,
// non-ASCII) is percent-encoded, so CR and LF can never reach the head.
std::string expand_return_url(std::string_view url, const Request& request,
                              std::string_view uri, std::string_view scheme);

}  // namespace preforkd::http
