// http/conditional.cpp - evaluating If-Match, If-Unmodified-Since,
// If-None-Match, If-Modified-Since and If-Range.
//
// The order is RFC 9110 13.2.2's and is the point of this file: a client's
// lost-update guard (If-Match / If-Unmodified-Since) is answered before its
// cache validation (If-None-Match / If-Modified-Since), and within each pair
// the entity-tag field, when present, decides alone because it is the more
// precise validator.  A field may arrive in several lines; they form one
// list (RFC 9110 5.3), so every line is read.  Our ETags are all strong, so
// "W/" on a received tag only matters for the strong comparisons (If-Match,
// If-Range), where a weak tag can never match.
#include "preforkd/http/conditional.hpp"

#include <optional>

#include "preforkd/http/date.hpp"
#include "preforkd/http/fields.hpp"

namespace preforkd::http {
namespace {

enum class Compare { strong, weak };

// Whether any line of field `name` lists `etag` (or "*", which matches any
// existing representation).  Empty when the field is absent.
std::optional<bool> etag_listed(const Request& req, std::string_view name, std::string_view etag,
                                Compare how)
{
    std::optional<bool> found;
    for (const Header& h : req.headers) {
        if (!iequals(h.name, name)) continue;
        bool hit = any_list_element(h.value, [&](std::string_view tag) {
            if (tag == "*") return true;
            if (tag.starts_with("W/")) {
                if (how == Compare::strong) return false;
                tag.remove_prefix(2);
            }
            return tag == etag;
        });
        found = found.value_or(false) || hit;
    }
    return found;
}

// The date in field `name` if it is there exactly once and valid.
std::optional<time_t> single_date(const Request& req, std::string_view name)
{
    std::optional<time_t> date;
    int lines = 0;
    for (const Header& h : req.headers) {
        if (!iequals(h.name, name)) continue;
        if (++lines > 1) return std::nullopt;
        date = parse_http_date(h.value);
    }
    return date;
}

// Steps 1 and 2: false means 412.
bool unchanged(const Request& req, std::string_view etag, time_t mtime)
{
    if (std::optional<bool> match = etag_listed(req, "If-Match", etag, Compare::strong))
        return *match;
    std::optional<time_t> since = single_date(req, "If-Unmodified-Since");
    return !since || mtime <= *since;
}

// Steps 3 and 4: true means 304.
bool still_fresh(const Request& req, std::string_view etag, time_t mtime)
{
    if (std::optional<bool> match = etag_listed(req, "If-None-Match", etag, Compare::weak))
        return *match;
    std::optional<time_t> since = single_date(req, "If-Modified-Since");
    return since && mtime <= *since;
}

}  // namespace

Precondition check_preconditions(const Request& req, std::string_view etag, time_t mtime)
{
    if (!unchanged(req, etag, mtime)) return Precondition::failed;
    if (still_fresh(req, etag, mtime)) return Precondition::not_modified;
    return Precondition::proceed;
}

bool if_range_holds(const Request& req, std::string_view etag, time_t mtime)
{
    if (!req.has_header("If-Range")) return true;
    std::string_view v = req.header("If-Range");
    if (v.starts_with("\"")) return v == etag;   // strong comparison
    if (v.starts_with("W/")) return false;       // a weak tag never validates a range
    std::optional<time_t> t = parse_http_date(v);
    return t && *t == mtime;
}

}  // namespace preforkd::http
