// sites.cpp - loading `sites` and their `locations` (DESIGN.md section 8).
//
// A site starts from the http group (root, index, autoindex, gzip_static,
// follow_symlinks) and the log group (access log and format), then takes what
// it writes; a location starts from its site's finished rules, then takes
// what it writes.  So every Location holds every rule in effect for it, and
// the HTTP layer never walks an inheritance chain per request.
//
// Checks that need more than one site are made as sites are read: a name may
// belong to one site only, and one site at most is `default = true`; the
// first holder's file and line are kept so that the message names both.
#include "loader.hpp"

#include <algorithm>

#include "preforkd/config/values.hpp"
#include "preforkd/listener.hpp"

namespace preforkd::config {

using schema::Key;
using schema::Kind;
using schema::Slot;
using Setting = libconfig::Setting;

namespace {

// What a site holds before it writes anything: the version-1 settings.
Site site_from_globals(const Config& config)
{
    Site site;
    site.rules.root = config.http.root;
    site.rules.index = config.http.index;
    site.rules.autoindex = config.http.autoindex;
    site.rules.gzip_static = config.http.gzip_static;
    site.rules.follow_symlinks = config.http.follow_symlinks;
    site.access_log = config.log.access_log;
    site.access_format = config.log.access_format;
    return site;
}

}  // namespace

void Loader::load_sites(const Setting& list)
{
    if (!list.isList()) {
        error(list, "sites must be a list of groups: sites = ( { names = [ ... ]; ... } );");
        return;
    }
    for (int i = 0; i < list.getLength(); ++i) {
        if (list[i].isGroup())
            load_site(list[i]);
        else
            error(list[i], "sites entries must be groups: { names = [ ... ]; root = ...; }");
    }
}

void Loader::load_site(const Setting& g)
{
    Site site = site_from_globals(config_);
    check_keys(g, "sites", schema::site);
    read_scope(g, schema::site, Slot{&config_, &site, nullptr, &site.rules});
    check_auth(g, site.rules, "sites");
    if (g.exists("locations"))
        load_locations(g["locations"], site);
    if (g.exists("default"))
        note_default(g["default"], site);
    config_.sites.push_back(std::move(site));
    site_at_.emplace_back(file_of(g), g.getSourceLine());
}

// Every key of `scope` written in `g`, in table order; locations last, once
// the site's own rules are complete.
void Loader::read_scope(const Setting& g, unsigned scope, const Slot& slot)
{
    std::string group = scope == schema::location ? "locations" : "sites";
    for (const Key& k : schema::keys()) {
        std::string name(k.name);
        if ((k.scope & scope) == 0 || k.kind == Kind::locations || !g.exists(name))
            continue;
        read_key(g[name.c_str()], k, slot, schema::dotted(group, k.name));
    }
}

void Loader::note_default(const Setting& s, const Site& site)
{
    if (!site.is_default)
        return;
    if (!default_at_.empty())
        return error(s, "sites.default: only one site may be the default; the first is at " +
                            default_at_);
    default_at_ = where(s);
}

// A realm without a password file would ask for credentials nothing can
// satisfy.  (Either may come from the site.)
void Loader::check_auth(const Setting& g, const Rules& rules, const std::string& group)
{
    if (!rules.auth_basic.empty() && rules.auth_basic_file.empty())
        error(g.exists("auth_basic") ? g["auth_basic"] : g,
              group + ".auth_basic needs an auth_basic_file");
}

void Loader::load_locations(const Setting& list, Site& site)
{
    if (!list.isList()) {
        error(list, "sites.locations must be a list of groups: locations = ( { path = \"/\"; } );");
        return;
    }
    for (int i = 0; i < list.getLength(); ++i) {
        if (list[i].isGroup())
            load_location(list[i], site);
        else
            error(list[i], "sites.locations entries must be groups: { path = \"/p/\"; ... }");
    }
}

void Loader::load_location(const Setting& g, Site& site)
{
    Location loc;
    loc.rules = site.rules;
    check_keys(g, "locations", schema::location);
    std::string why;
    if (!g.exists("path"))
        return error(g, "locations.path must be set: path = \"/prefix/\"; or \"= /exact\"");
    const Setting& path = g["path"];
    if (path.getType() != Setting::TypeString)
        return error(path, "locations.path must be a string");
    if (!values::parse_location_path(path.c_str(), loc, why))
        return error(path, "locations.path " + why);
    for (const Location& other : site.locations)
        if (other.path == loc.path && other.exact == loc.exact)
            error(path, "locations.path " + in_quotes(path.c_str()) +
                            " is already a location of this site");
    read_scope(g, schema::location, Slot{&config_, &site, &loc, &loc.rules});
    check_auth(g, loc.rules, "locations");
    site.locations.push_back(std::move(loc));
}

void Loader::load_names(const Setting& s, std::vector<std::string>& out)
{
    auto items = strings(s, "sites.names");
    if (!items)
        return;
    out.clear();
    for (const Setting* item : *items) {
        std::string why;
        auto name = values::server_name(item->c_str(), why);
        if (!name) {
            error(*item, "sites.names: " + why);
            continue;
        }
        auto [first, is_new] = names_seen_.emplace(*name, where(*item));
        if (!is_new)
            error(*item, "sites.names: " + in_quotes(*name) + " is already a name of the site at " +
                             first->second);
        else
            out.push_back(*name);
    }
}

// A site answers on some of the top-level listeners; each entry must name
// one of them, as the same canonical address.
void Loader::load_site_listen(const Setting& s, std::vector<std::string>& out)
{
    auto items = strings(s, "sites.listen");
    if (!items)
        return;
    out.clear();
    for (const Setting* item : *items) {
        std::string text = item->c_str();
        if (text.rfind("unix:", 0) == 0 && text.size() > 5)
            text = "unix:" + resolve(text.substr(5));
        auto parsed = listener::parse(text);
        if (!parsed.address) {
            error(*item, parsed.error);
            continue;
        }
        auto same = std::find_if(config_.listen.begin(), config_.listen.end(), [&](const std::string& l) {
            auto top = listener::parse(l);
            return top.address && top.address->canonical == parsed.address->canonical;
        });
        if (same == config_.listen.end())
            error(*item, "sites.listen: " + in_quotes(item->c_str()) +
                             " is not one of the top-level listen addresses");
        else
            out.push_back(*same);
    }
}

void Loader::load_headers(const Setting& s, const std::string& display, std::vector<std::string>& out)
{
    auto items = strings(s, display);
    if (!items)
        return;
    out.clear();
    for (const Setting* item : *items) {
        std::string problem = values::header_problem(item->c_str());
        if (!problem.empty())
            error(*item, display + ": " + in_quotes(item->c_str()) + " " + problem);
        else
            out.push_back(item->c_str());
    }
}

void Loader::load_cidrs(const Setting& s, const std::string& display, std::vector<Cidr>& out)
{
    auto items = strings(s, display);
    if (!items)
        return;
    out.clear();
    for (const Setting* item : *items) {
        std::string why;
        if (auto cidr = values::parse_cidr(item->c_str(), why))
            out.push_back(*cidr);
        else
            error(*item, display + ": " + why);
    }
}

void Loader::load_expires(const Setting& s, const std::string& display, Expires& out)
{
    auto text = string(s, display);
    if (!text)
        return;
    std::string why;
    if (auto e = values::parse_expires(*text, why))
        out = *e;
    else
        error(s, display + " " + why);
}

// `return = ( 301, "https://..." );` or `return = ( 404 );` (also `404;`);
// `( )` is none, so a location can drop its site's return.
void Loader::load_return(const Setting& s, const std::string& display, Return& out)
{
    std::string usage = display + " must be ( 301, \"URL\" ) with 301, 302, 307 or 308, "
                                  "or ( 403 ), ( 404 ) or ( 410 )";
    bool list = s.isList() || s.isArray();
    if (list && s.getLength() == 0) {
        out = Return{};   // none: what -T prints for a site without one
        return;
    }
    const Setting* code = list ? (s.getLength() >= 1 ? &s[0] : nullptr) : &s;
    if (!code || code->getType() != Setting::TypeInt || (list && s.getLength() > 2))
        return error(s, usage);
    int status = *code;
    bool redirect = status == 301 || status == 302 || status == 307 || status == 308;
    bool refusal = status == 403 || status == 404 || status == 410;
    bool has_url = list && s.getLength() == 2;
    if ((!redirect && !refusal) || redirect != has_url)
        return error(s, usage);
    Return r{status, ""};
    if (has_url) {
        if (s[1].getType() != Setting::TypeString || !values::is_clean_uri(s[1].c_str()))
            return error(s[1], display + ": the URL must be a string without spaces or "
                                         "control characters");
        r.url = s[1].c_str();
    }
    out = r;
}

void Loader::load_error_pages(const Setting& s, const std::string& display,
                              std::vector<ErrorPage>& out)
{
    if (!s.isList())
        return error(s, display + " must be a list: error_page = ( { status = [ 404 ]; "
                                  "page = \"/404.html\"; } );");
    out.clear();
    for (int i = 0; i < s.getLength(); ++i) {
        ErrorPage page;
        if (!s[i].isGroup())
            error(s[i], display + " entries must be groups: { status = [ 404 ]; page = \"...\"; }");
        else
            load_error_page(s[i], display, page);
        if (!page.page.empty())
            out.push_back(std::move(page));
    }
}

void Loader::load_error_page(const Setting& g, const std::string& display, ErrorPage& out)
{
    for (int i = 0; i < g.getLength(); ++i) {
        std::string name = g[i].getName();
        if (name != "status" && name != "page")
            error(g[i], "unknown key '" + display + "." + name + "' (status and page are)");
    }
    if (!g.exists("status") || !g.exists("page"))
        return error(g, display + " entries need status = [ ... ]; and page = \"/...\";");
    const Setting& status = g["status"];
    bool list = status.isArray() || status.isList();
    for (int i = 0; i < (list ? status.getLength() : 1); ++i) {
        const Setting& one = list ? status[i] : status;
        if (one.getType() != Setting::TypeInt || int(one) < 400 || int(one) > 599)
            return error(one, display + ".status must be error statuses from 400 to 599");
        out.status.push_back(int(one));
    }
    const Setting& page = g["page"];
    if (page.getType() != Setting::TypeString || page.c_str()[0] != '/' ||
        !values::is_clean_uri(page.c_str()))
        return error(page, display + ".page must be a path in the site, like \"/404.html\"");
    if (out.status.empty())
        return error(status, display + ".status must name at least one status");
    out.page = page.c_str();
}

// `tls = { certificate = "..."; key = "..."; };` - both; `( )` is none, as
// -T prints a site without a certificate (and as `return = ( )` is).
// Whether the files exist and match is the master's check
// (tls/context.hpp), made again at every reload.
void Loader::load_site_tls(const Setting& g, SiteTls& out)
{
    const std::string usage =
        "sites.tls must be a group: tls = { certificate = \"/path/fullchain.pem\"; "
        "key = \"/path/privkey.pem\"; };";
    if ((g.isList() || g.isArray()) && g.getLength() == 0) {
        out = SiteTls{};
        return;
    }
    if (!g.isGroup())
        return error(g, usage);
    for (int i = 0; i < g.getLength(); ++i) {
        std::string name = g[i].getName();
        if (name != "certificate" && name != "key")
            error(g[i], "unknown key 'sites.tls." + name + "' (certificate and key are)");
    }
    SiteTls tls;
    for (auto [name, field] : {std::pair{"certificate", &tls.certificate}, {"key", &tls.key}}) {
        if (!g.exists(name))
            continue;
        auto text = string(g[name], std::string("sites.tls.") + name);
        if (text && text->empty())
            error(g[name], std::string("sites.tls.") + name + " must not be empty");
        else if (text)
            *field = resolve(*text);
    }
    if (tls.certificate.empty() || tls.key.empty())
        return error(g, "sites.tls needs both a certificate and a key");
    tls.where = where(g);
    out = tls;
}

// A TLS listener answers a client without SNI, or with an unknown name,
// with its default site's certificate: that site must have one.  The
// default is chosen as the site table chooses it (http/site.hpp): the
// `default = true` site if it answers on the listener, else the first
// site that does.
void Loader::check_tls_listeners()
{
    if (!errors_.empty() || listen_at_.size() != config_.listen.size())
        return;
    std::vector<Site> sites = effective_sites(config_);
    for (std::size_t i = 0; i < config_.listen.size(); ++i) {
        if (!listen_options_of(config_, i).tls)
            continue;
        auto answers = [&](const Site& s) {
            return s.listen.empty() ||
                   std::find(s.listen.begin(), s.listen.end(), config_.listen[i]) != s.listen.end();
        };
        auto chosen = std::find_if(sites.begin(), sites.end(),
                                   [&](const Site& s) { return s.is_default && answers(s); });
        if (chosen == sites.end())
            chosen = std::find_if(sites.begin(), sites.end(), answers);
        if (chosen == sites.end())
            chosen = sites.begin();
        if (!chosen->tls.certificate.empty())
            continue;
        std::size_t index = std::size_t(chosen - sites.begin());
        std::string which = config_.sites.empty()
                                ? std::string("there are no sites, so the http group is the site")
                                : "its default site is the one at " + site_at_[index].first + ":" +
                                      std::to_string(site_at_[index].second);
        errors_.add(listen_at_[i].first, listen_at_[i].second,
                    "listen entry " + in_quotes(config_.listen[i]) +
                        " has tls = true, but " + which +
                        ", which has no certificate: give it tls = { certificate = \"...\"; "
                        "key = \"...\"; }");
    }
}

std::vector<Site> effective_sites(const Config& config)
{
    if (!config.sites.empty())
        return config.sites;
    Site site = site_from_globals(config);
    site.is_default = true;
    return {site};
}

}  // namespace preforkd::config
