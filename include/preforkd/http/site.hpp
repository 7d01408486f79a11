// http/site.hpp - virtual hosts and their locations: the table a worker answers from.
//
// Two layers.  The *Spec structs are what configuration supplies, with
// every rule optional so that a location inherits what its site sets.
// SiteTable compiles them once (in the master, before workers fork) into
// a Policy per location with everything resolved, so a request only finds
// its site and location and reads the Policy: no merging, no parsing, no
// allocation on the way.
//
// Finding the site is an exact hash lookup, then one hash lookup per
// suffix of the name for the longest wildcard ("*.example.net" is stored
// as ".example.net"), then the default: the cost grows with the name's
// dots, never with the number of sites.  Finding the location is a hash
// lookup for exact paths ("= /healthz"), then the prefixes, longest first.
// With one site and no locations, as every configuration without `sites`
// has, both are skipped.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "preforkd/http/access.hpp"
#include "preforkd/http/auth.hpp"
#include "preforkd/http/static_file.hpp"
#include "preforkd/http/status.hpp"

namespace preforkd::http {

// `return`: 301, 302, 307 or 308 with a URL (variables $host, $request_uri,
// $uri, $scheme), or 403, 404 or 410 without one.
struct Return {
    int status = 0;   // 0: none
    std::string url;
};

// `expires`: a number of seconds from now, or nginx's "epoch" (already
// expired: Cache-Control no-cache) and "max" (ten years); "off" sends
// neither field, so a location can drop what its site sets.
struct Expiry {
    enum class Kind { seconds, epoch, max, off };
    Kind kind = Kind::seconds;
    std::int64_t seconds = 0;
};

struct ErrorPage {
    std::vector<int> statuses;
    std::string page;   // a path on the same site, "/errors/404.html"
};

// Rules a site sets as defaults and a location may override.  An empty
// optional inherits from the site (a site's empty optional: the default).
struct RuleSpec {
    std::optional<std::string> root;                 // location: another root
    std::optional<std::string> alias;                // location: the prefix maps to this directory
    std::optional<std::vector<std::string>> index;
    std::optional<bool> autoindex;
    std::optional<bool> gzip_static;
    std::optional<bool> follow_symlinks;
    std::optional<std::vector<std::string>> headers;   // "Name: value", added to every response
    std::optional<std::string> cache_control;        // Cache-Control on 200, 206, 304
    std::optional<Expiry> expires;                   // Expires, and Cache-Control unless set
    std::optional<Return> ret;                       // status 0: none, over the site's
    std::optional<bool> deny_hidden;                 // default true
    std::optional<std::vector<AccessRule>> access;   // allow and deny, first match wins
    std::optional<BasicAuth> auth;                   // empty realm: none, over the site's
    std::optional<std::vector<ErrorPage>> error_pages;
    std::optional<StatusFormat> status;              // the status page instead of files
};

struct LocationSpec {
    std::string path;   // "/static/" (prefix) or "= /healthz" (exact)
    RuleSpec rules;
};

struct SiteSpec {
    std::string name;                  // in logs; the first of `names` when empty
    std::vector<std::string> names;    // "example.org", "*.example.net"
    bool is_default = false;           // else the first site is the default
    std::vector<int> listeners;        // listener indexes it answers on; empty: all
    Site files;                        // root, index, autoindex, mime ... as today
    RuleSpec rules;                    // the site's defaults for its locations
    std::vector<LocationSpec> locations;
    // The worker's access log for this site: 0 the main log, n >= 1
    // worker::Context::site_logs[n - 1], -1 none (access_log = "off").
    int log = 0;
};

// One location's rules, resolved.
struct Policy {
    Site files;                          // root (or alias), index, autoindex, gzip_static
    std::string alias_prefix;            // non-empty: strip this, serve the rest from files.root
    std::string headers;                 // "Name: value\r\n" lines
    std::string cache_control;           // "" : none
    std::optional<Expiry> expires;       // Expires on 200, 206, 304
    Return ret;
    bool deny_hidden = true;
    std::size_t open_prefix = 0;         // path bytes a location opened to hidden segments
    std::vector<AccessRule> access;
    std::shared_ptr<const BasicAuth> auth;
    std::vector<std::pair<int, std::string>> error_pages;   // status -> page
    StatusFormat status = StatusFormat::off;   // not off: answers with the pool's status
    // Nothing but the hidden-segment check to do: the fast path.
    bool plain() const noexcept;
};

struct VirtualSite {
    std::string name;
    int log = 0;
    std::uint64_t listeners = ~std::uint64_t(0);   // bit i: answers on listener i
    Policy defaults;                               // no location matched
    bool has_locations = false;
    bool plain = true;                             // no locations, plain defaults: the fast path

    // The location for a decoded, normalised path.
    const Policy& locate(std::string_view path) const;
    // Adds a location while the table is compiled; false when `path` is
    // there already.  Prefixes may come in any order.
    bool add_location(std::string path, bool exact, Policy policy);
    // Appends the root of the defaults and of every location.
    void roots(std::vector<std::string>& out) const;

    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept
        {
            return std::hash<std::string_view>{}(s);
        }
    };
private:
    using Map = std::unordered_map<std::string, Policy, Hash, std::equal_to<>>;
    // The paths of a map share a length; `last` has a bit for each byte a
    // path of the map ends in, so a request path whose byte at that place
    // is none of them skips the hash (prefixes mostly end in '/').
    struct Bucket {
        std::size_t length = 0;
        std::bitset<256> last;
        Map paths;
        const Policy* find(std::string_view path) const;
    };
    std::vector<Bucket> exact_;      // by length, any order
    // Prefixes by length, longest first: a lookup costs at most one hash
    // probe per distinct prefix length (usually two or three), not a
    // compare per location.
    std::vector<Bucket> prefixes_;
};

class SiteTable {
public:
    // Today's configuration: one site, every name, every listener.
    explicit SiteTable(Site files);
    // Compiles `specs`; throws std::invalid_argument naming every problem
    // (one per line): no sites, a bad name or location path, a header
    // that is not a valid field, a return status outside the lists above,
    // a listener index over 63.
    explicit SiteTable(const std::vector<SiteSpec>& specs);

    // The site for a request's Host (or absolute-form authority; "" for an
    // HTTP/1.0 request without one) on listener `listener`.
    const VirtualSite& find(std::string_view host, int listener) const;
    const VirtualSite& default_site() const noexcept { return sites_[default_]; }
    // Every directory a request may be served from: each site's root and
    // each location's root or alias, once each (a worker's sandbox allows
    // reading beneath these and nothing else).
    std::vector<std::string> roots() const;
    std::size_t size() const noexcept { return sites_.size(); }
    // The position of `site` (one of this table's) in the specs it was built from.
    std::size_t index_of(const VirtualSite& site) const noexcept
    {
        return std::size_t(&site - sites_.data());
    }

private:
    const VirtualSite* first_on(const std::vector<std::size_t>* candidates, int listener) const;
    void index_names(const std::vector<SiteSpec>& specs, std::string& errors);

    using Names = std::unordered_map<std::string, std::vector<std::size_t>, VirtualSite::Hash,
                                     std::equal_to<>>;
    std::vector<VirtualSite> sites_;
    Names exact_;
    Names wildcard_;                     // ".example.net" for "*.example.net"
    std::size_t default_ = 0;
    std::vector<std::size_t> listener_default_;   // per listener index, when bound sites exist
    bool single_ = true;                 // one site on every listener: no lookup at all
};

// A "Name: value" line checked against RFC 9110 field syntax; false with
// `why` set when it is not one.
bool valid_header_line(std::string_view line, std::string& why);

}  // namespace preforkd::http
