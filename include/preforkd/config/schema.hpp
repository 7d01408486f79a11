// config/schema.hpp - the table of configuration keys.
//
// One descriptor per key: where it lives (group), its name, what kind of
// value it takes, its range or choices, where it may be written (scope),
// what a reload does with it, a one-line description, and how to reach its
// field in a Config, Site, Location or Rules.  The loader, the "did you mean"
// hints, the -T dump, known_keys() and the tests all walk this table, so a
// new key is its descriptor plus the code that uses it.  The default is not
// written here: it is the struct member's initialiser in config.hpp, read
// back from a default-constructed value (default_text()).
//
// Keys whose values need more than a type and a range (listen, unix_mode,
// sites, headers, return ...) have their own Kind; the loader and the dump
// each have one function per such kind.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd::config::schema {

enum class Kind {
    integer,      // int or long field, lo..hi
    boolean,
    string,       // check() may refuse a value
    path,         // a string made absolute against the configuration's directory
    choice,       // one of `choices`; `derived` gets the chosen value
    strings,      // an array of strings; check() applies to each
    group,        // workers = { ... }: its keys have this name as their group
    // Read and printed by functions of their own:
    include, listen, unix_mode, access_log, sites, names, site_listen, locations,
    location_path, headers, error_page, expires, ret, cidrs, site_tls,
};

// Where a key may be written.  A key of a site that a location may also set
// is its default for the site's locations.
enum Scope : unsigned { global = 1, site = 2, location = 4 };

// What a reload does with a changed value.
enum class Reload { applies, next_start };

struct Named {
    std::string_view name;
    int value;
};

// Where the loader writes, and the dump reads, one key's value.
struct Slot {
    Config* config = nullptr;
    Site* site = nullptr;
    Location* location = nullptr;
    Rules* rules = nullptr;   // of the site or location being read
};

using Field = std::variant<std::monostate, int*, long*, bool*, std::string*,
                           std::vector<std::string>*, AccessFormat*, std::vector<Cidr>*,
                           Return*, std::vector<ErrorPage>*, Expires*, std::vector<Location>*,
                           std::vector<Site>*, SiteTls*>;

struct Key {
    std::string_view group;   // "", "workers", "http", "log"; "sites"/"locations" for scoped keys
    std::string_view name;
    Kind kind;
    unsigned scope = global;
    long long lo = 0;                       // integer range
    long long hi = 0;
    std::span<const Named> choices = {};
    Field (*field)(const Slot&) = nullptr;  // nullptr for groups and location paths
    int* (*derived)(const Slot&) = nullptr; // choice: receives the chosen value
    // string/strings: nullptr if `value` is fine, else the rest of the message
    // after the key's name (" must be a media type like \"text/plain\"").
    const char* (*check)(std::string_view value) = nullptr;
    bool allow_empty = false;               // string/path: "" is a value
    Reload reload = Reload::applies;
    std::string_view doc;
};

// Every key, in the order -T prints them.
std::span<const Key> keys();

// The key `name` in `group` ("" for the top level), for the scope being read;
// nullptr if there is none.  Site and location keys are found with group
// "sites" or "locations".
const Key* find(std::string_view group, std::string_view name, unsigned scope = global);

// The dotted name of a key as messages and man pages show it.
std::string dotted(std::string_view group, std::string_view name);

// The known key an unknown `name` in `group` most likely meant, "" if none.
std::string suggestion(std::string_view group, std::string_view name, unsigned scope);

// The name of `value` in `choices` ("" if absent).
std::string_view name_of(std::span<const Named> choices, int value);

// A global key's value in `config` as -T prints it ("5", "true", "\"batch\"").
std::string value_text(const Key& k, const Config& config);

// Its default, read from a default-constructed Config: the struct
// initialiser is the default.
std::string default_text(const Key& k);

// The choices of log.access_format and sites.access_format.
std::span<const Named> access_formats();

}  // namespace preforkd::config::schema
