// loader.hpp - the walk of parsed trees into a Config; private to
// src/config/ because it speaks libconfig.  loader.cpp holds the walk and
// the typed reads of the key table's kinds, sites.cpp the sites and
// locations.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libconfig.h++>

#include "preforkd/config.hpp"
#include "preforkd/config/schema.hpp"
#include "preforkd/config/support.hpp"

namespace preforkd::config {

// One parsed file: the main one first, then what `include` named.
struct Tree {
    std::unique_ptr<libconfig::Config> parsed;
    std::string name;          // as messages name it
    std::string display_dir;   // prefix for files it @includes
};

// Pre-scans and parses `text`; nullopt (with errors added) if it cannot be.
std::optional<Tree> parse_tree(const std::string& text, const Origin& origin, Errors& errors);

// Walks parsed trees into a Config, collecting every error.
class Loader {
public:
    using Setting = libconfig::Setting;

    Loader(const Origin& origin, Errors& errors, std::vector<Tree>& trees)
        : origin_(origin), errors_(errors), trees_(trees) {}

    Config run();

private:
    // loader.cpp
    void read_includes();
    void include_file(const Setting& item, const std::string& file);
    void check_top_keys();
    void load_top_key(const schema::Key& k);
    const Setting* group(const Setting& parent, const char* key);
    void check_keys(const Setting& g, std::string_view group_name, unsigned scope);
    void read_group(const Setting& g, std::string_view group_name);
    void read_key(const Setting& g, const schema::Key& k, const schema::Slot& slot,
                  const std::string& display);
    void check_pool(const Setting* g);
    void check_http(const Setting* g);
    void load_listen(const Setting& s);
    std::optional<std::string> listen_address(const Setting& item,
                                              std::map<std::string, std::string>& seen);
    std::optional<std::string> listen_entry(const Setting& g, ListenOptions& options,
                                            std::map<std::string, std::string>& seen);
    void load_unix_mode(const Setting& s);
    void load_access_log(const Setting& s, const std::string& display, std::string& out);

    std::optional<long long> integer(const Setting& s, const std::string& display);
    void read_integer(const Setting& s, const schema::Key& k, const schema::Field& f,
                      const std::string& display);
    void read_bool(const Setting& s, const std::string& display, bool& out);
    std::optional<std::string> string(const Setting& s, const std::string& display);
    void read_string(const Setting& s, const schema::Key& k, std::string& out,
                     const std::string& display);
    void read_choice(const Setting& s, const schema::Key& k, const schema::Slot& slot,
                     const std::string& display);
    std::optional<std::vector<const Setting*>> strings(const Setting& s,
                                                       const std::string& display);
    void read_strings(const Setting& s, const schema::Key& k, std::vector<std::string>& out,
                      const std::string& display);

    // sites.cpp
    void load_sites(const Setting& list);
    void load_site(const Setting& g);
    void read_scope(const Setting& g, unsigned scope, const schema::Slot& slot);
    void load_locations(const Setting& list, Site& site);
    void load_location(const Setting& g, Site& site);
    void load_names(const Setting& s, std::vector<std::string>& out);
    void load_site_listen(const Setting& s, std::vector<std::string>& out);
    void load_headers(const Setting& s, const std::string& display, std::vector<std::string>& out);
    void load_cidrs(const Setting& s, const std::string& display, std::vector<Cidr>& out);
    void load_expires(const Setting& s, const std::string& display, Expires& out);
    void load_return(const Setting& s, const std::string& display, Return& out);
    void load_error_pages(const Setting& s, const std::string& display,
                          std::vector<ErrorPage>& out);
    void load_error_page(const Setting& g, const std::string& display, ErrorPage& out);
    void load_site_tls(const Setting& s, SiteTls& out);
    void check_tls_listeners();
    void note_default(const Setting& s, const Site& site);
    void check_auth(const Setting& g, const Rules& rules, const std::string& group);

    std::string file_of(const Setting& s) const;
    std::string where(const Setting& s) const
    {
        return file_of(s) + ":" + std::to_string(s.getSourceLine());
    }
    void error(const Setting& s, const std::string& message)
    {
        errors_.add(file_of(s), s.getSourceLine(), message);
    }
    std::string resolve(const std::string& path) const
    {
        return absolute_from(origin_.base_dir, path);
    }

    const Origin& origin_;
    Errors& errors_;
    std::vector<Tree>& trees_;
    std::size_t current_ = 0;                          // the tree being walked
    std::map<std::string, std::size_t> owner_;         // top-level key -> tree
    std::map<std::string, std::string> names_seen_;    // site name -> "file:line"
    std::string default_at_;                           // "file:line" of default = true
    // Where each loaded listen entry and site was written, index for index
    // with Config::listen and Config::sites, for checks made once all is read.
    std::vector<std::pair<std::string, unsigned>> listen_at_, site_at_;
    Config config_;
};

}  // namespace preforkd::config
