// site_setup.cpp - from config::Site to http::SiteSpec, as the master.
//
// The configuration has already resolved inheritance (http -> site ->
// location), so each location here carries every rule in force for it and
// is translated whole: "none" is said explicitly (return status 0, expires
// off, an empty realm) rather than left unset, so a location can drop what
// its site sets.  A password file named by several locations is read once
// per build.  Roots inside a chroot are given as the workers see them, from
// the new "/".
#include "preforkd/site_setup.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "preforkd/http/auth.hpp"
#include "preforkd/listener.hpp"

namespace preforkd::site_setup {
namespace {

std::string jailed(const config::Config& c, std::string path)
{
    const std::string& jail = c.chroot;
    if (!jail.empty() && path.rfind(jail, 0) == 0)
        path = path.substr(jail.size());
    while (path.size() > 1 && path.back() == '/')
        path.pop_back();
    return path.empty() ? "/" : path;
}

http::Expiry expiry_of(const config::Expires& e)
{
    using K = config::Expires::Kind;
    switch (e.kind) {
    case K::off: return {http::Expiry::Kind::off, 0};
    case K::epoch: return {http::Expiry::Kind::epoch, 0};
    case K::max: return {http::Expiry::Kind::max, 0};
    case K::seconds: break;
    }
    return {http::Expiry::Kind::seconds, e.seconds};
}

class Builder {
public:
    // `open_logs` false: a check that must create no file (-t).
    Builder(const config::Config& c, const http::MimeMap& mime, bool open_logs = true)
        : c_(c), mime_(mime), open_logs_(open_logs) {}
    Sites run();

private:
    http::SiteSpec site(const config::Site& s);
    http::RuleSpec rules(const config::Rules& r, bool location);
    std::vector<int> listeners(const config::Site& s);
    int log_sink(const config::Site& s);
    void tls_files();
    const std::vector<http::PasswordEntry>& passwords(const std::string& path);

    const config::Config& c_;
    const http::MimeMap& mime_;
    bool open_logs_;
    Sites out_;
    std::string errors_;
    std::map<std::string, std::vector<http::PasswordEntry>> password_files_;
};

Sites Builder::run()
{
    std::vector<http::SiteSpec> specs;
    for (const config::Site& s : config::effective_sites(c_))
        specs.push_back(site(s));
    tls_files();
    if (!errors_.empty())
        throw std::runtime_error(errors_.substr(0, errors_.size() - 1));
    try {
        out_.table.emplace(specs);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(e.what());
    }
    return std::move(out_);
}

http::SiteSpec Builder::site(const config::Site& s)
{
    http::SiteSpec spec;
    spec.name = s.names.empty() ? "default" : s.names.front();
    spec.names = s.names;
    spec.is_default = s.is_default;
    spec.listeners = listeners(s);
    spec.files = http::Site{
        .root = jailed(c_, s.rules.root),
        .index = s.rules.index,
        .autoindex = s.rules.autoindex,
        .server_tokens = c_.http.server_tokens,
        .mime = &mime_,
        .default_type = c_.http.default_type,
        .follow_symlinks = s.rules.follow_symlinks,
        .gzip_static = s.rules.gzip_static,
        .max_ranges = std::size_t(c_.http.max_ranges),
    };
    spec.rules = rules(s.rules, false);
    for (const config::Location& l : s.locations)
        spec.locations.push_back({(l.exact ? "= " : "") + l.path, rules(l.rules, true)});
    spec.log = log_sink(s);
    return spec;
}

http::RuleSpec Builder::rules(const config::Rules& r, bool location)
{
    http::RuleSpec spec;
    spec.root = jailed(c_, r.root);
    if (location && !r.alias.empty())
        spec.alias = jailed(c_, r.alias);
    spec.index = r.index;
    spec.autoindex = r.autoindex;
    spec.gzip_static = r.gzip_static;
    spec.follow_symlinks = r.follow_symlinks;
    spec.headers = r.headers;
    spec.expires = expiry_of(r.expires);
    if (!r.cache_control.empty())
        spec.cache_control = r.cache_control;
    spec.ret = http::Return{r.ret.status, r.ret.url};
    spec.deny_hidden = r.deny_hidden;
    // allow entries are tried before deny entries (preforkd.conf(5)).
    std::vector<http::AccessRule> access;
    for (bool allow : {true, false})
        for (const config::Cidr& cidr : allow ? r.allow : r.deny) {
            if (auto rule = http::parse_access_rule(allow, cidr.text))
                access.push_back(*rule);
            else
                errors_ += "allow/deny entry \"" + cidr.text + "\" is not an address block\n";
        }
    spec.access = access;
    http::BasicAuth auth;
    if (!r.auth_basic.empty()) {
        auth.realm = r.auth_basic;
        auth.entries = passwords(r.auth_basic_file);
    }
    spec.auth = auth;   // an empty realm: no authentication
    std::vector<http::ErrorPage> pages;
    for (const config::ErrorPage& e : r.error_pages)
        pages.push_back({e.status, e.page});
    spec.error_pages = pages;
    if (location)
        spec.status = http::status_format(r.status).value_or(http::StatusFormat::off);
    return spec;
}

// Indexes into the configuration's listen list, compared by canonical
// address ("*:80" and "0.0.0.0:80" are one listener); empty: every one.
std::vector<int> Builder::listeners(const config::Site& s)
{
    std::vector<int> indexes;
    for (const std::string& wanted : s.listen) {
        auto w = listener::parse(wanted);
        for (std::size_t i = 0; i < c_.listen.size(); ++i) {
            auto l = listener::parse(c_.listen[i]);
            if (w.address && l.address && w.address->canonical == l.address->canonical)
                indexes.push_back(int(i));
        }
    }
    return indexes;
}

// 0: the main log, n >= 1: a log of its own, -1: none.  Sites that write the
// main log's file in its format share the main log's buffer.
int Builder::log_sink(const config::Site& s)
{
    if (s.access_log == "off")
        return -1;
    access_log::Format format = access_log::format_of(s.access_format);
    bool main_format = s.access_format == c_.log.access_format;
    if (s.access_log == c_.log.access_log && main_format)
        return 0;
    if (s.access_log == "syslog") {
        errors_ += "site \"" + (s.names.empty() ? "default" : s.names.front()) +
                   "\": access_log = \"syslog\" with its own format needs log.access_log = "
                   "\"syslog\" and the same access_format\n";
        return 0;
    }
    for (std::size_t i = 0; i < out_.logs.size(); ++i)
        if (out_.logs[i].path == s.access_log && out_.logs[i].format == format)
            return int(i) + 1;
    try {
        Fd fd = open_logs_ ? access_log::open_path(s.access_log) : Fd();
        out_.logs.push_back({std::move(fd), s.access_log, format});
    } catch (const std::system_error& e) {
        errors_ += std::string(e.what()) + "\n";
        return -1;
    }
    return int(out_.logs.size());
}

// Certificates and keys are read by the master, as root, before it forks;
// a check (-t, a reload's checking child) reads them too but keeps nothing.
void Builder::tls_files()
{
    if (!open_logs_) {
        for (const std::string& p : tls::check(c_).problems)
            errors_ += p + "\n";
        return;
    }
    try {
        out_.tls = tls::generation(c_);
    } catch (const std::runtime_error& e) {
        errors_ += std::string(e.what()) + "\n";
    }
}

const std::vector<http::PasswordEntry>& Builder::passwords(const std::string& path)
{
    auto it = password_files_.find(path);
    if (it != password_files_.end())
        return it->second;
    std::vector<http::PasswordEntry> entries;
    try {
        entries = http::load_htpasswd(path);
    } catch (const std::exception& e) {
        errors_ += std::string(e.what()) + "\n";
    }
    return password_files_.emplace(path, std::move(entries)).first->second;
}

}  // namespace

Sites build(const config::Config& config, const http::MimeMap& mime)
{
    return Builder(config, mime).run();
}

std::vector<std::string> check(const config::Config& config)
{
    http::MimeMap none;
    try {
        Builder(config, none, false).run();
    } catch (const std::exception& e) {
        std::vector<std::string> problems;
        std::string text = e.what();
        for (std::size_t start = 0; start <= text.size();) {
            std::size_t end = std::min(text.find('\n', start), text.size());
            if (end > start)
                problems.push_back(text.substr(start, end - start));
            start = end + 1;
        }
        return problems;
    }
    return {};
}

std::vector<Fd> reopen(const Sites& sites)
{
    std::vector<Fd> fresh;
    for (const LogFile& l : sites.logs)
        fresh.push_back(access_log::open_path(l.path));
    return fresh;
}

}  // namespace preforkd::site_setup
