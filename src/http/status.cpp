// http/status.cpp - the head of a status page; its body is rendered elsewhere.
//
// A status page is never cached (Cache-Control: no-store): a monitoring
// system polling it must see the pool as it is, not a copy a proxy kept.
// It answers GET and HEAD only; the body is rendered for HEAD too, so that
// Content-Length is the one GET would get.  Rejected: a query language of
// our own (mod_status's `?refresh`, `?notable`): the three formats cover
// a person, a program and the existing plugins.
#include "preforkd/http/status.hpp"

namespace preforkd::http {

std::optional<StatusFormat> status_format(std::string_view name) noexcept
{
    if (name == "off") return StatusFormat::off;
    if (name == "text") return StatusFormat::text;
    if (name == "json") return StatusFormat::json;
    if (name == "auto") return StatusFormat::automatic;
    return std::nullopt;
}

StatusFormat requested_format(StatusFormat configured, std::string_view query) noexcept
{
    while (!query.empty()) {
        std::size_t end = query.find_first_of("&;");
        std::string_view param = query.substr(0, end);
        if (param.substr(0, param.find('=')) == "auto") return StatusFormat::automatic;
        query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    }
    return configured;
}

std::string_view status_media_type(StatusFormat format) noexcept
{
    switch (format) {
    case StatusFormat::json: return "application/json";
    case StatusFormat::automatic: return "text/plain; charset=us-ascii";
    case StatusFormat::off:
    case StatusFormat::text: break;
    }
    return "text/plain; charset=utf-8";
}

Response status_response(const Exchange& x, const Request& request, StatusFormat configured,
                         const StatusSource* source)
{
    if (request.method != "GET" && request.method != "HEAD") {
        Response r = status_page(x, 405);
        add_header(r, "Allow", "GET, HEAD");
        return finish_response(x, std::move(r));
    }
    if (!source || !*source) return finish_response(x, status_page(x, 503));
    StatusFormat format = requested_format(configured, request.query);
    Response r = start_response(x, 200);
    r.body = (*source)(format);
    add_header(r, "Content-Type", status_media_type(format));
    add_header(r, "Content-Length", std::to_string(r.body.size()));
    add_header(r, "Cache-Control", "no-store");
    return finish_response(x, std::move(r));
}

}  // namespace preforkd::http
