// http/site.cpp - compiling site specs into a lookup table, and the lookups.
//
// Compilation happens once per configuration, in the master, and gathers
// every problem before it throws, so an administrator sees them all in one
// `preforkd -t`.  A location's Policy is the site's rules with the
// location's own laid over them; nothing is merged per request.
#include "preforkd/http/site.hpp"

#include <algorithm>
#include <stdexcept>

#include "preforkd/http/host.hpp"

namespace preforkd::http {
namespace {

constexpr int kMaxListeners = 64;

bool is_tchar(char c) noexcept
{
    static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           extra.find(c) != std::string_view::npos;
}

// Later wins: the location's value when it has one, else the site's.
template <typename T>
const std::optional<T>& pick(const std::optional<T>& site, const std::optional<T>* location)
{
    return location && location->has_value() ? *location : site;
}

std::string without_trailing_slash(std::string path)
{
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
}

bool valid_return(const Return& r, std::string& why)
{
    bool redirect = r.status == 301 || r.status == 302 || r.status == 307 || r.status == 308;
    bool refusal = r.status == 403 || r.status == 404 || r.status == 410;
    if (!redirect && !refusal) why = "return status " + std::to_string(r.status) +
                                     " is not one of 301 302 307 308 403 404 410";
    else if (redirect && r.url.empty()) why = "return " + std::to_string(r.status) + " needs a URL";
    else if (refusal && !r.url.empty()) why = "return " + std::to_string(r.status) + " takes no URL";
    else if (r.url.find_first_of("\r\n") != std::string::npos) why = "return URL holds CR or LF";
    else return true;
    return false;
}

// Does `path` hold a segment starting with '.'?
bool has_hidden_segment(std::string_view path) noexcept
{
    return path.find("/.") != std::string_view::npos;
}

struct Compiler {
    const SiteSpec& site;
    std::string& errors;
    std::string where;

    void error(const std::string& what) { errors += where + ": " + what + "\n"; }

    void apply_files(Policy& p, const RuleSpec& r, std::string_view location_path)
    {
        if (r.root) p.files.root = without_trailing_slash(*r.root);
        if (r.alias) {
            if (location_path.empty()) error("alias is for locations; a site sets root");
            p.files.root = without_trailing_slash(*r.alias);
            p.alias_prefix = location_path;
        }
        if (r.index) p.files.index = *r.index;
        if (r.autoindex) p.files.autoindex = *r.autoindex;
        if (r.gzip_static) p.files.gzip_static = *r.gzip_static;
        if (r.follow_symlinks) p.files.follow_symlinks = *r.follow_symlinks;
    }

    void apply_headers(Policy& p, const std::vector<std::string>& lines)
    {
        p.headers.clear();
        for (const std::string& line : lines) {
            std::string why;
            if (!valid_header_line(line, why)) {
                error("header \"" + line + "\": " + why);
                continue;
            }
            std::size_t colon = line.find(':');
            std::string_view value = std::string_view(line).substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
                value.remove_prefix(1);
            p.headers.append(line, 0, colon).append(": ").append(value).append("\r\n");
        }
    }

    Policy compile(const RuleSpec* loc, std::string_view location_path, bool exact)
    {
        Policy p;
        p.files = site.files;
        apply_files(p, site.rules, {});
        if (loc) apply_files(p, *loc, exact ? std::string_view() : location_path);
        if (const auto& h = pick(site.rules.headers, loc ? &loc->headers : nullptr)) apply_headers(p, *h);
        if (const auto& e = pick(site.rules.expires, loc ? &loc->expires : nullptr)) {
            if (e->kind == Expiry::Kind::seconds && e->seconds < 0) error("expires must not be negative");
            p.expires = e->kind == Expiry::Kind::off ? std::nullopt : std::optional<Expiry>(*e);
            p.cache_control = e->kind == Expiry::Kind::off     ? ""
                              : e->kind == Expiry::Kind::epoch ? "no-cache"
                              : e->kind == Expiry::Kind::max   ? "max-age=315360000"
                                                               : "max-age=" + std::to_string(e->seconds);
        }
        if (const auto& cc = pick(site.rules.cache_control, loc ? &loc->cache_control : nullptr)) {
            std::string why;
            if (!valid_header_line("Cache-Control: " + *cc, why)) error("cache_control: " + why);
            p.cache_control = *cc;
        }
        if (const auto& r = pick(site.rules.ret, loc ? &loc->ret : nullptr)) {
            std::string why;
            if (r->status != 0 && !valid_return(*r, why)) error(why);
            p.ret = *r;
        }
        if (const auto& d = pick(site.rules.deny_hidden, loc ? &loc->deny_hidden : nullptr))
            p.deny_hidden = *d;
        // A location that names a hidden segment itself opens it.
        if (loc && has_hidden_segment(location_path)) p.open_prefix = location_path.size();
        if (const auto& a = pick(site.rules.access, loc ? &loc->access : nullptr)) p.access = *a;
        if (const auto& a = pick(site.rules.auth, loc ? &loc->auth : nullptr))
            p.auth = a->realm.empty() ? nullptr : std::make_shared<const BasicAuth>(*a);
        if (const auto& pages = pick(site.rules.error_pages, loc ? &loc->error_pages : nullptr))
            for (const ErrorPage& e : *pages) {
                if (!e.page.starts_with('/')) error("error_page \"" + e.page + "\" must start with /");
                for (int s : e.statuses) {
                    if (s < 400 || s > 599) error("error_page status " + std::to_string(s) + " is not 4xx or 5xx");
                    p.error_pages.emplace_back(s, e.page);
                }
            }
        if (const auto& f = pick(site.rules.status, loc ? &loc->status : nullptr)) p.status = *f;
        return p;
    }

    void add_locations(VirtualSite& v)
    {
        std::vector<const LocationSpec*> order;
        for (const LocationSpec& l : site.locations) order.push_back(&l);
        // Longest first, so that the first prefix that matches is the longest.
        std::stable_sort(order.begin(), order.end(), [](const LocationSpec* a, const LocationSpec* b) {
            return a->path.size() > b->path.size();
        });
        for (const LocationSpec* l : order) {
            bool exact = l->path.starts_with("= ");
            std::string path = exact ? l->path.substr(2) : l->path;
            if (!path.starts_with('/')) {
                error("location \"" + l->path + "\" must be \"/prefix\" or \"= /path\"");
                continue;
            }
            Policy p = compile(&l->rules, path, exact);
            if (!v.add_location(path, exact, std::move(p)))
                error("location \"" + l->path + "\" is given twice");
        }
        v.has_locations = !site.locations.empty();
    }
};

}  // namespace

bool valid_header_line(std::string_view line, std::string& why)
{
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        why = "expected \"Name: value\"";
        return false;
    }
    for (char c : line.substr(0, colon))
        if (!is_tchar(c)) {
            why = "the name is not a token";
            return false;
        }
    for (unsigned char c : line.substr(colon + 1))
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            why = "the value holds a control character";
            return false;
        }
    return true;
}

bool Policy::plain() const noexcept
{
    return headers.empty() && cache_control.empty() && !expires && ret.status == 0 &&
           access.empty() && !auth && error_pages.empty() && alias_prefix.empty() &&
           status == StatusFormat::off;
}

const Policy& VirtualSite::locate(std::string_view path) const
{
    if (!has_locations) return defaults;
    for (const Bucket& b : exact_)
        if (b.length == path.size())
            if (const Policy* p = b.find(path)) return *p;
    for (const Bucket& b : prefixes_)
        if (b.length <= path.size())
            if (const Policy* p = b.find(path.substr(0, b.length))) return *p;
    return defaults;
}

const Policy* VirtualSite::Bucket::find(std::string_view path) const
{
    if (!path.empty() && !last.test((unsigned char)path.back())) return nullptr;
    auto it = paths.find(path);
    return it == paths.end() ? nullptr : &it->second;
}

void VirtualSite::roots(std::vector<std::string>& out) const
{
    auto add = [&](const Policy& p) {
        if (std::find(out.begin(), out.end(), p.files.root) == out.end())
            out.push_back(p.files.root);
    };
    add(defaults);
    for (const std::vector<Bucket>* buckets : {&exact_, &prefixes_})
        for (const Bucket& b : *buckets)
            for (const auto& [path, policy] : b.paths)
                add(policy);
}

std::vector<std::string> SiteTable::roots() const
{
    std::vector<std::string> out;
    for (const VirtualSite& v : sites_)
        v.roots(out);
    return out;
}

bool VirtualSite::add_location(std::string path, bool exact, Policy policy)
{
    std::size_t length = path.size();
    std::vector<Bucket>& buckets = exact ? exact_ : prefixes_;
    auto it = std::find_if(buckets.begin(), buckets.end(),
                           [&](const Bucket& b) { return b.length <= length; });
    if (it == buckets.end() || it->length != length) {
        it = buckets.insert(it, Bucket{});
        it->length = length;
    }
    if (!path.empty()) it->last.set((unsigned char)path.back());
    return it->paths.emplace(std::move(path), std::move(policy)).second;
}

SiteTable::SiteTable(Site files)
{
    VirtualSite v;
    v.name = "default";
    v.defaults.files = std::move(files);
    sites_.push_back(std::move(v));
}

SiteTable::SiteTable(const std::vector<SiteSpec>& specs)
{
    std::string errors;
    bool marked = false;
    if (specs.empty()) errors = "no sites\n";
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const SiteSpec& s = specs[i];
        VirtualSite v;
        v.name = !s.name.empty() ? s.name : !s.names.empty() ? s.names.front() : "site " + std::to_string(i + 1);
        Compiler c{s, errors, "site \"" + v.name + "\""};
        v.log = s.log;
        v.defaults = c.compile(nullptr, {}, false);
        c.add_locations(v);
        v.plain = !v.has_locations && v.defaults.plain();
        if (!s.listeners.empty()) v.listeners = 0;
        for (int l : s.listeners) {
            if (l < 0 || l >= kMaxListeners) c.error("listener index " + std::to_string(l) + " is out of range");
            else v.listeners |= std::uint64_t(1) << l;
        }
        if (s.is_default && marked) c.error("a second default site");
        if (s.is_default && !marked) default_ = i;
        marked = marked || s.is_default;
        sites_.push_back(std::move(v));
    }
    index_names(specs, errors);
    if (!errors.empty()) {
        errors.pop_back();
        throw std::invalid_argument(errors);
    }
    single_ = sites_.size() == 1 && sites_[0].listeners == ~std::uint64_t(0);
    listener_default_.resize(kMaxListeners, default_);
    for (int l = 0; l < kMaxListeners; ++l) {
        std::uint64_t bit = std::uint64_t(1) << l;
        if (sites_[default_].listeners & bit) continue;
        for (std::size_t i = 0; i < sites_.size(); ++i)
            if (sites_[i].listeners & bit) {
                listener_default_[std::size_t(l)] = i;
                break;
            }
    }
}

void SiteTable::index_names(const std::vector<SiteSpec>& specs, std::string& errors)
{
    for (std::size_t i = 0; i < specs.size(); ++i)
        for (const std::string& raw : specs[i].names) {
            bool wild = raw.starts_with("*.");
            std::string_view name = wild ? std::string_view(raw).substr(1) : std::string_view(raw);
            std::string_view host = wild ? name.substr(1) : name;
            // A name carries no port: a ':' may only be inside an IPv6 literal.
            bool literal = host.starts_with('[') && host.ends_with(']');
            if (!valid_authority(host) || (!literal && host.find(':') != std::string_view::npos) ||
                (wild && literal) || host.find('*') != std::string_view::npos) {
                errors += "site \"" + sites_[i].name + "\": name \"" + raw + "\" is not a host name or *.domain\n";
                continue;
            }
            std::string key = wild ? "." + host_name(host) : host_name(host);
            (wild ? wildcard_ : exact_)[key].push_back(i);
        }
}

const VirtualSite* SiteTable::first_on(const std::vector<std::size_t>* candidates, int listener) const
{
    if (!candidates) return nullptr;
    std::uint64_t bit = listener >= 0 && listener < kMaxListeners ? std::uint64_t(1) << listener : 0;
    for (std::size_t i : *candidates)
        if (bit == 0 || (sites_[i].listeners & bit)) return &sites_[i];
    return nullptr;
}

const VirtualSite& SiteTable::find(std::string_view host, int listener) const
{
    if (single_) return sites_[0];
    std::string name = host_name(host);
    auto lookup = [](const Names& names, std::string_view key) {
        auto it = names.find(key);
        return it == names.end() ? nullptr : &it->second;
    };
    if (const VirtualSite* v = first_on(lookup(exact_, name), listener)) return *v;
    for (std::size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
        if (const VirtualSite* v = first_on(lookup(wildcard_, std::string_view(name).substr(dot)), listener))
            return *v;
    bool known = listener >= 0 && listener < kMaxListeners;
    return sites_[known ? listener_default_[std::size_t(listener)] : default_];
}

}  // namespace preforkd::http
