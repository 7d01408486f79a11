// http/rules.cpp - the rules of a location, applied around the static-file responder.
//
// Rules produce ordinary responses through response.hpp, so every refusal
// has the same head as any other error.  Decorations are inserted before
// the head's closing blank line after the responder is done: the responder
// stays ignorant of sites, and the site's headers reach every response it
// makes, errors included.
//
// An error page is a second request, GET (or HEAD) of the page's path on
// the same site with no conditional or range fields, answered by the same
// responder from the files of the page's location; that location's rules
// (return, allow/deny, auth) are not applied, so a page is never refused by
// the rule whose refusal it explains.  Only a 200 replaces the original
// answer, whose status it then takes.  The page's own answer is never given
// an error page, so a missing or failing page cannot loop: the plain error
// is sent instead.
#include "preforkd/http/rules.hpp"

#include <ctime>

#include "preforkd/http/host.hpp"
#include "preforkd/http/path.hpp"
#include "preforkd/http/response.hpp"

namespace preforkd::http {
namespace {

// Inserts "name: value" just before the blank line ending `r.head`.
void insert_field(Response& r, std::string_view name, std::string_view value)
{
    std::string line;
    line.reserve(name.size() + value.size() + 4);
    line.append(name).append(": ").append(value).append("\r\n");
    r.head.insert(r.head.size() - 2, line);
}

// See body_forces_close in static_file.cpp: a rule's answer leaves the
// body unread just as the responder's would.
bool closing(const Request& req, const Visit& v)
{
    if (v.close || !req.wants_keep_alive()) return true;
    return req.has_body() && (v.body == UnreadBody::close_connection || req.has_header("Expect"));
}

Response refuse(const Request& req, const Visit& v, const Policy& p, int status, std::string why)
{
    Exchange x{p.files, req.version_minor, closing(req, v), req.method == "HEAD"};
    Response r = finish_response(x, status_page(x, status));
    r.refusal = std::move(why);
    return r;
}

Response redirect(const Request& req, const Visit& v, const Policy& p, std::string_view uri)
{
    Exchange x{p.files, req.version_minor, closing(req, v), req.method == "HEAD"};
    Response r = status_page(x, p.ret.status);
    add_header(r, "Location", expand_return_url(p.ret.url, req, uri, v.scheme));
    return finish_response(x, std::move(r));
}

Response unauthorized(const Request& req, const Visit& v, const Policy& p, const std::string& user)
{
    Exchange x{p.files, req.version_minor, closing(req, v), req.method == "HEAD"};
    Response r = status_page(x, 401);
    add_header(r, "WWW-Authenticate", "Basic realm=\"" + p.auth->realm + "\", charset=\"UTF-8\"");
    r = finish_response(x, std::move(r));
    r.refusal = user.empty() ? "no credentials for realm \"" + p.auth->realm + "\""
                             : "wrong password or unknown user \"" + user + "\"";
    return r;
}

const std::string* error_page_for(const Policy& p, int status)
{
    for (const auto& [s, page] : p.error_pages)
        if (s == status) return &page;
    return nullptr;
}

// The page's answer in place of `r`, with r's status; `r` itself when the
// page cannot be served with 200.
Response with_error_page(const Request& req, const Visit& v, const std::string& page, Response r)
{
    Request sub;
    sub.method = req.method == "HEAD" ? "HEAD" : "GET";
    sub.path = encode_path(page);
    sub.target = sub.path;
    sub.version_minor = req.version_minor;
    sub.request_line = req.request_line;
    sub.host = req.host;
    const Policy& pp = v.site.locate(normalize_path(page));
    Response pr = respond(sub, pp.files, r.close, UnreadBody::discard);
    if (pr.status != 200 || pr.close != r.close) return r;
    std::size_t eol = pr.head.find("\r\n");
    pr.head.replace(0, eol, "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status));
    pr.status = r.status;
    pr.refusal = std::move(r.refusal);
    if (r.status == 401) {
        std::size_t at = r.head.find("\r\nWWW-Authenticate: ");
        std::size_t end = r.head.find("\r\n", at + 2);
        insert_field(pr, "WWW-Authenticate", r.head.substr(at + 20, end - at - 20));
    }
    return pr;
}

// "Expires" for now + seconds, formatted once per second and duration;
// "epoch" and "max" are the fixed dates nginx sends.
const std::string& expires_at(const Expiry& e)
{
    static const std::string epoch = "Thu, 01 Jan 1970 00:00:01 GMT";
    static const std::string max = "Thu, 31 Dec 2037 23:55:55 GMT";
    if (e.kind == Expiry::Kind::epoch) return epoch;
    if (e.kind == Expiry::Kind::max) return max;
    std::int64_t seconds = e.seconds;
    static time_t for_now = -1;
    static std::int64_t for_seconds = -1;
    static std::string text;
    time_t now = ::time(nullptr);
    if (now != for_now || seconds != for_seconds) {
        text = format_http_date(now + time_t(seconds));
        for_now = now;
        for_seconds = seconds;
    }
    return text;
}

Response decorate(const Request& req, const Visit& v, const Policy& p, Response r)
{
    if (const std::string* page = error_page_for(p, r.status))
        r = with_error_page(req, v, *page, std::move(r));
    if (!p.headers.empty()) r.head.insert(r.head.size() - 2, p.headers);
    bool cacheable = r.status == 200 || r.status == 206 || r.status == 304;
    if (cacheable && !p.cache_control.empty()) insert_field(r, "Cache-Control", p.cache_control);
    if (cacheable && p.expires) insert_field(r, "Expires", expires_at(*p.expires));
    return r;
}

// The rules that may answer before any file is looked at.
std::optional<Response> gate(const Request& req, const Visit& v, const Policy& p,
                             std::string_view uri)
{
    if (p.ret.status >= 300 && p.ret.status < 400) return redirect(req, v, p, uri);
    if (p.ret.status) return refuse(req, v, p, p.ret.status, "");
    if (p.deny_hidden && hidden_path(uri, p.open_prefix))
        return refuse(req, v, p, 404, "hidden path " + std::string(uri));
    if (!p.access.empty() && !access_allowed(p.access, v.client))
        return refuse(req, v, p, 403, "denied by an allow/deny rule");
    if (p.auth) {
        AuthCheck a = check_basic(*p.auth, req.header("Authorization"));
        if (!a.ok) return unauthorized(req, v, p, a.user);
    }
    return std::nullopt;
}

// The request the responder sees for an alias location: the location's
// prefix cut off the path.  Its /dir -> /dir/ redirect names the path the
// responder saw, so the prefix is put back in front.
Response serve_alias(const Request& req, const Visit& v, const Policy& p, std::string_view uri,
                     bool close)
{
    Request sub = req;
    std::string_view prefix = p.alias_prefix;
    if (prefix.ends_with('/')) prefix.remove_suffix(1);
    std::string_view rest = uri.substr(prefix.size());
    sub.path = encode_path(rest.empty() ? std::string_view("/") : rest);
    Response r = respond(sub, p.files, close, v.body);
    std::size_t at = r.status == 301 ? r.head.find("\r\nLocation: /") : std::string::npos;
    if (at != std::string::npos) r.head.insert(at + 12, encode_path(prefix));
    return r;
}

// A raw path that percent-decodes and normalises to itself and holds no
// "/.": nothing to decode before the hidden check or the location lookup.
bool needs_decoding(std::string_view raw) noexcept
{
    // One pass, as this runs on every request of the fast path.
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '%') return true;
        if (c == '/' && i + 1 < raw.size() && (raw[i + 1] == '.' || raw[i + 1] == '/')) return true;
    }
    return false;
}

// Did the decoded path try to climb above the root with ".."?  The
// normaliser drops such segments, so the 404 that follows needs saying why.
bool climbs_above_root(std::string_view decoded) noexcept
{
    int depth = 0;
    while (!decoded.empty()) {
        std::size_t slash = decoded.find('/');
        std::string_view segment = decoded.substr(0, slash);
        if (segment == "..") {
            if (--depth < 0) return true;
        } else if (!segment.empty() && segment != ".") {
            ++depth;
        }
        decoded = slash == std::string_view::npos ? std::string_view() : decoded.substr(slash + 1);
    }
    return false;
}

}  // namespace

bool hidden_path(std::string_view path, std::size_t open) noexcept
{
    std::size_t from = open > 0 ? open - 1 : 0;
    if (path.starts_with("/.well-known/") || path == "/.well-known")
        from = std::max<std::size_t>(from, 12);
    return path.find("/.", from) != std::string_view::npos;
}

std::string expand_return_url(std::string_view url, const Request& req, std::string_view uri,
                              std::string_view scheme)
{
    std::string raw;
    std::string request_uri = req.path + (req.query.empty() ? "" : "?" + req.query);
    for (std::size_t i = 0; i < url.size(); ++i) {
        std::string_view rest = url.substr(i);
        auto take = [&](std::string_view var, std::string_view value) {
            if (!rest.starts_with(var)) return false;
            raw += value;
            i += var.size() - 1;
            return true;
        };
        if (take("$host", req.host.empty() ? "" : host_name(req.host)) ||
            take("$request_uri", request_uri) || take("$uri", encode_path(uri)) ||
            take("$scheme", scheme))
            continue;
        raw += url[i];
    }
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : raw) {
        if (c <= 0x20 || c >= 0x7f) {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += char(c);
        }
    }
    return out;
}

Response answer(const Request& req, const Visit& v)
{
    const VirtualSite& site = v.site;
    if (site.plain && !needs_decoding(req.path))
        return respond(req, site.defaults.files, v.close, v.body);
    std::optional<std::string> decoded = percent_decode(req.path);
    if (!decoded) return respond(req, site.defaults.files, v.close, v.body);   // its 400
    std::string uri = normalize_path(*decoded);
    const Policy& p = site.locate(uri);
    if (std::optional<Response> early = gate(req, v, p, uri))
        return decorate(req, v, p, std::move(*early));
    if (p.status != StatusFormat::off) {
        Exchange x{p.files, req.version_minor, closing(req, v), req.method == "HEAD"};
        return decorate(req, v, p, status_response(x, req, p.status, v.status));
    }
    Response r = p.alias_prefix.empty() ? respond(req, p.files, v.close, v.body, &uri)
                                        : serve_alias(req, v, p, uri, v.close);
    if (r.status == 404 && r.refusal.empty() && climbs_above_root(*decoded))
        r.refusal = "path " + *decoded + " climbs outside the root; looked for " + uri;
    return p.plain() ? std::move(r) : decorate(req, v, p, std::move(r));
}

}  // namespace preforkd::http
