// loader.cpp - loading the configuration: load_file() and load_string().
//
// libconfig parses; this file decides what the parse means.  The tree is
// walked against the key table (config/schema.hpp), and every setting is
// checked by type and range by hand, because libconfig's lookupValue() keeps
// the default when the type is wrong and so lets a typo pass in silence.  No
// check stops the walk: every error is collected with the file and line of the
// setting it is about, and one ConfigError carries them all.
//
// The top-level text is handed to readString() for files as well as strings,
// so both entry points share one path; libconfig then reports settings of the
// top file with no source file, and we supply the name the user gave.
//
// Files named by `include` are parsed one by one, each its own tree.  They
// may add sites (their `sites` entries are appended in file order); any other
// top-level key may be set in one file of the set only, so no value silently
// wins over another; `include` itself is read in the main file only.
#include "loader.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "preforkd/config/include.hpp"
#include "preforkd/listener.hpp"

namespace preforkd::config {

using schema::Field;
using schema::Key;
using schema::Kind;
using schema::Slot;
using Setting = libconfig::Setting;

std::optional<Tree> parse_tree(const std::string& text, const Origin& origin, Errors& errors)
{
    errors.met(origin.name);
    if (!include::prescan(text, origin, errors))
        return std::nullopt;   // libconfig would exit() or fail on these
    Tree tree{std::make_unique<libconfig::Config>(), origin.name, origin.display_dir};
    tree.parsed->setIncludeDir(origin.include_dir.c_str());
    try {
        tree.parsed->readString(text);
    } catch (const libconfig::ParseException& e) {
        errors.add(e.getFile() ? origin.display_dir + e.getFile() : origin.name,
                   unsigned(e.getLine()), e.getError());
        return std::nullopt;
    }
    return tree;
}

Config Loader::run()
{
    config_.file = origin_.file;
    read_includes();
    check_top_keys();
    for (const Key& k : schema::keys())
        if (k.scope == schema::global && k.group.empty())
            load_top_key(k);
    check_tls_listeners();
    return config_;
}

// --- include and the top level of each file ------------------------------------

namespace {

std::string canonical(const std::string& path)
{
    std::error_code ec;
    std::string real = std::filesystem::weakly_canonical(path, ec).string();
    return ec ? path : real;
}

}  // namespace

void Loader::read_includes()
{
    const Setting& root = trees_[0].parsed->getRoot();
    if (!root.exists("include"))
        return;
    auto items = strings(root["include"], "include");
    // A file named twice (by two patterns) is read once; the main file
    // matched by its own pattern ("*.conf" beside it) would be read twice.
    std::set<std::string> read = {canonical(origin_.file)};
    for (const Setting* item : items.value_or(std::vector<const Setting*>{})) {
        include::Expansion found = include::expand(item->c_str(), origin_.base_dir);
        if (!found.error.empty())
            error(*item, found.error);
        for (const std::string& file : found.files) {
            if (!origin_.file.empty() && canonical(file) == canonical(origin_.file))
                error(*item, "include " + in_quotes(item->c_str()) +
                                 " names this configuration file itself");
            else if (read.insert(canonical(file)).second)
                include_file(*item, file);
        }
    }
}

void Loader::include_file(const Setting& item, const std::string& file)
{
    std::string failure;
    auto text = read_all(file, failure);
    if (!text)
        return error(item, "include " + in_quotes(item.c_str()) + ": " + failure);
    Origin origin = origin_of_file(file, origin_.base_dir);
    if (auto tree = parse_tree(*text, origin, errors_))
        trees_.push_back(std::move(*tree));
}

// Unknown keys, and keys set in two files of the set.
void Loader::check_top_keys()
{
    for (current_ = 0; current_ < trees_.size(); ++current_) {
        const Setting& root = trees_[current_].parsed->getRoot();
        check_keys(root, "", schema::global);
        for (int i = 0; i < root.getLength(); ++i) {
            std::string name = root[i].getName();
            if (name == "sites" || !schema::find("", name))
                continue;
            if (name == "include" && current_ > 0) {
                error(root[i], "include is read in the main configuration file only");
                continue;
            }
            auto [first, is_new] = owner_.emplace(name, current_);
            if (!is_new)
                error(root[i], name + " is already set in " + trees_[first->second].name +
                                   "; only sites may be added by an included file");
        }
    }
}

void Loader::load_top_key(const Key& k)
{
    std::string name(k.name);
    if (k.kind == Kind::sites) {
        for (current_ = 0; current_ < trees_.size(); ++current_) {
            const Setting& root = trees_[current_].parsed->getRoot();
            if (root.exists("sites"))
                load_sites(root["sites"]);
        }
        return;
    }
    auto owner = owner_.find(name);
    current_ = owner == owner_.end() ? 0 : owner->second;
    const Setting& root = trees_[current_].parsed->getRoot();
    if (k.kind == Kind::group) {
        const Setting* g = group(root, name.c_str());
        if (g)
            read_group(*g, k.name);
        if (name == "workers")
            check_pool(g);
        if (name == "http")
            check_http(g);
        if (name == "tls" && g && g->exists("ticket_key_file"))   // the file is read later
            config_.tls.ticket_key_file_where = where((*g)["ticket_key_file"]);
    } else if (k.kind != Kind::include && root.exists(name)) {
        read_key(root[name.c_str()], k, Slot{&config_}, name);
    }
}

std::string Loader::file_of(const Setting& s) const
{
    // libconfig names @included files as written, and the text given to
    // readString() not at all.
    const char* file = s.getSourceFile();
    const Tree& tree = trees_[current_];
    return file ? tree.display_dir + file : tree.name;
}

const Setting* Loader::group(const Setting& parent, const char* key)
{
    if (!parent.exists(key))
        return nullptr;
    const Setting& g = parent[key];
    if (!g.isGroup()) {
        error(g, std::string(key) + " must be a group: " + key + " = { ... };");
        return nullptr;
    }
    check_keys(g, key, schema::global);
    return &g;
}

void Loader::check_keys(const Setting& g, std::string_view group_name, unsigned scope)
{
    for (int i = 0; i < g.getLength(); ++i) {
        const Setting& s = g[i];
        std::string_view name = s.getName();
        if (schema::find(group_name, name, scope))
            continue;
        std::string message = "unknown key '" + schema::dotted(group_name, name) + "'";
        std::string hint = schema::suggestion(group_name, name, scope);
        error(s, hint.empty() ? message : message + " (did you mean '" + hint + "'?)");
    }
}

void Loader::read_group(const Setting& g, std::string_view group_name)
{
    for (const Key& k : schema::keys()) {
        std::string name(k.name);
        if (k.scope == schema::global && k.group == group_name && g.exists(name))
            read_key(g[name.c_str()], k, Slot{&config_}, schema::dotted(k.group, k.name));
    }
}

// --- one key, by kind ----------------------------------------------------------

void Loader::read_key(const Setting& s, const Key& k, const Slot& slot, const std::string& display)
{
    Field f = k.field ? k.field(slot) : Field{};
    switch (k.kind) {
    case Kind::integer: return read_integer(s, k, f, display);
    case Kind::boolean: return read_bool(s, display, *std::get<bool*>(f));
    case Kind::string:
    case Kind::path: return read_string(s, k, *std::get<std::string*>(f), display);
    case Kind::choice: return read_choice(s, k, slot, display);
    case Kind::strings: return read_strings(s, k, *std::get<std::vector<std::string>*>(f), display);
    case Kind::listen: return load_listen(s);
    case Kind::unix_mode: return load_unix_mode(s);
    case Kind::access_log: return load_access_log(s, display, *std::get<std::string*>(f));
    case Kind::names: return load_names(s, *std::get<std::vector<std::string>*>(f));
    case Kind::site_listen: return load_site_listen(s, *std::get<std::vector<std::string>*>(f));
    case Kind::headers: return load_headers(s, display, *std::get<std::vector<std::string>*>(f));
    case Kind::cidrs: return load_cidrs(s, display, *std::get<std::vector<Cidr>*>(f));
    case Kind::expires: return load_expires(s, display, *std::get<Expires*>(f));
    case Kind::ret: return load_return(s, display, *std::get<Return*>(f));
    case Kind::error_page: return load_error_pages(s, display, *std::get<std::vector<ErrorPage>*>(f));
    case Kind::locations: return load_locations(s, *slot.site);
    case Kind::site_tls: return load_site_tls(s, *std::get<SiteTls*>(f));
    case Kind::group: case Kind::include: case Kind::sites: case Kind::location_path: return;
    }
}

// The pool settings constrain each other.  A default nobody wrote bends to
// what was written, as in Apache: "max = 2;" alone is a valid small pool, not
// an error about a "start = 5" that is not in the file.  Written values that
// contradict each other are errors.
void Loader::check_pool(const Setting* g)
{
    Workers& w = config_.workers;
    bool has_start = g && g->exists("start");
    bool has_max_spare = g && g->exists("max_spare");
    if (!has_start)
        w.start = std::min(w.start, w.max);
    else if (w.start > w.max)
        error((*g)["start"], "workers.start must be between 0 and " + std::to_string(w.max) +
                                 " (workers.max)");
    if (!has_max_spare)
        w.max_spare = std::max(w.max_spare, w.min_spare);
    else if (w.max_spare < w.min_spare)
        error((*g)["max_spare"], "workers.max_spare must be between " +
                                     std::to_string(w.min_spare) + " and " +
                                     std::to_string(kMaxWorkers) +
                                     " (not below workers.min_spare)");
}

// Unset, header_timeout_max follows header_timeout up; written, it must not
// be below it.
void Loader::check_http(const Setting* g)
{
    Http& h = config_.http;
    if (h.header_timeout_max >= h.header_timeout)
        return;
    if (g && g->exists("header_timeout_max"))
        error((*g)["header_timeout_max"],
              "http.header_timeout_max must not be below http.header_timeout");
    h.header_timeout_max = h.header_timeout;
}

// listen = ( "127.0.0.1:80", { address = "*:443"; tls = true; }, ... );
// Each item is an address string or a group with the address and its options.
void Loader::load_listen(const Setting& s)
{
    const std::string message =
        "listen must be a list of addresses or entries: listen = ( \"*:80\", "
        "{ address = \"*:443\"; tls = true; } );";
    if (!s.isList() && !s.isArray())
        return error(s, message);
    if (s.getLength() == 0)
        return error(s, "listen must name at least one address");
    config_.listen.clear();
    config_.listen_options.clear();
    listen_at_.clear();
    std::map<std::string, std::string> seen;   // canonical address -> as first written
    for (int i = 0; i < s.getLength(); ++i) {
        const Setting& item = s[i];
        ListenOptions options;
        std::optional<std::string> text;
        if (item.getType() == Setting::TypeString)
            text = listen_address(item, seen);
        else if (item.isGroup())
            text = listen_entry(item, options, seen);
        else
            error(item, message);
        if (!text)
            continue;
        config_.listen.push_back(*text);
        config_.listen_options.push_back(options);
        listen_at_.emplace_back(file_of(item), item.getSourceLine());
    }
    // Trailing entries without options are implied (listen_options_of), so
    // a configuration written with plain strings equals one set in code.
    while (!config_.listen_options.empty() && config_.listen_options.back() == ListenOptions{})
        config_.listen_options.pop_back();
}

// { address = "..."; tls = true; proxy_protocol = true; proxy_trusted = [ ... ]; }
std::optional<std::string> Loader::listen_entry(const Setting& g, ListenOptions& options,
                                                std::map<std::string, std::string>& seen)
{
    static constexpr std::string_view known[] = {"address", "tls", "proxy_protocol",
                                                 "proxy_trusted"};
    for (int i = 0; i < g.getLength(); ++i) {
        std::string name = g[i].getName();
        if (std::find(std::begin(known), std::end(known), name) == std::end(known))
            error(g[i], "listen entry: unknown setting " + in_quotes(name) +
                            " (an entry has address, tls, proxy_protocol, proxy_trusted)");
    }
    if (g.exists("tls"))
        read_bool(g["tls"], "listen entry's tls", options.tls);
    if (g.exists("proxy_protocol"))
        read_bool(g["proxy_protocol"], "listen entry's proxy_protocol", options.proxy_protocol);
    if (g.exists("proxy_trusted")) {
        load_cidrs(g["proxy_trusted"], "listen entry's proxy_trusted", options.proxy_trusted);
        if (!options.proxy_protocol)
            error(g["proxy_trusted"],
                  "listen entry's proxy_trusted needs proxy_protocol = true on the same entry");
    }
    if (!g.exists("address")) {
        error(g, "listen entry needs an address: { address = \"*:443\"; ... }");
        return std::nullopt;
    }
    if (g["address"].getType() != Setting::TypeString) {
        error(g["address"], "listen entry's address must be a string, like \"*:443\"");
        return std::nullopt;
    }
    return listen_address(g["address"], seen);
}

// One listen entry with a unix path made absolute; nullopt if rejected.
std::optional<std::string> Loader::listen_address(const Setting& item,
                                                  std::map<std::string, std::string>& seen)
{
    std::string written = item.c_str();
    std::string text = written;
    if (text.rfind("unix:", 0) == 0 && text.size() > 5)
        text = "unix:" + resolve(text.substr(5));
    auto parsed = listener::parse(text);
    if (!parsed.address) {
        error(item, parsed.error);
        return std::nullopt;
    }
    // Port 0 asks the kernel for any free port: two of them are two sockets.
    const listener::Address& a = *parsed.address;
    bool any_port = a.family != listener::Family::unix_path && a.port == 0;
    auto [first, is_new] = seen.emplace(a.canonical, written);
    if (!is_new && !any_port) {
        error(item, "listen address " + in_quotes(written) + " is the same as " +
                        in_quotes(first->second));
        return std::nullopt;
    }
    return text;
}

// A string, not an integer: libconfig 1.5 reads 0660 as decimal 660.
void Loader::load_unix_mode(const Setting& s)
{
    if (s.getType() != Setting::TypeString)
        return error(s, "unix_mode must be a string of octal digits, like \"0660\"");
    std::string text = s.c_str();
    bool octal = !text.empty() && text.size() <= 4 &&
                 text.find_first_not_of("01234567") == std::string::npos;
    int bits = octal ? std::stoi(text, nullptr, 8) : -1;
    if (bits < 0 || bits > 0777)
        return error(s, "unix_mode must be between \"0000\" and \"0777\" "
                        "(octal digits, like \"0660\")");
    char normal[8];
    std::snprintf(normal, sizeof normal, "%04o", unsigned(bits));
    config_.unix_mode = normal;
    config_.unix_mode_bits = bits;
}

void Loader::load_access_log(const Setting& s, const std::string& display, std::string& out)
{
    auto log = string(s, display);
    if (!log)
        return;
    if (log->empty())
        error(s, display + " must be a path, \"syslog\" or \"off\"");
    else
        out = *log == "syslog" || *log == "off" ? *log : resolve(*log);
}

// --- typed access to one setting --------------------------------------------

std::optional<long long> Loader::integer(const Setting& s, const std::string& display)
{
    if (s.getType() == Setting::TypeInt)
        return static_cast<long long>(static_cast<int>(s));
    if (s.getType() == Setting::TypeInt64)
        return static_cast<long long>(s);
    error(s, display + " must be an integer");
    return std::nullopt;
}

void Loader::read_integer(const Setting& s, const Key& k, const Field& f,
                          const std::string& display)
{
    auto value = integer(s, display);
    if (!value)
        return;
    if (*value < k.lo || *value > k.hi)
        return error(s, display + " must be between " + std::to_string(k.lo) + " and " +
                            std::to_string(k.hi));
    if (auto* p = std::get_if<int*>(&f))
        **p = static_cast<int>(*value);
    else
        *std::get<long*>(f) = static_cast<long>(*value);
}

void Loader::read_bool(const Setting& s, const std::string& display, bool& out)
{
    if (s.getType() == Setting::TypeBoolean)
        out = s;
    else
        error(s, display + " must be true or false");
}

std::optional<std::string> Loader::string(const Setting& s, const std::string& display)
{
    if (s.getType() == Setting::TypeString)
        return std::string(s.c_str());
    error(s, display + " must be a string");
    return std::nullopt;
}

void Loader::read_string(const Setting& s, const Key& k, std::string& out,
                         const std::string& display)
{
    auto value = string(s, display);
    if (!value)
        return;
    const char* problem = k.check && !value->empty() ? k.check(*value) : nullptr;
    if (value->empty() && !k.allow_empty)
        error(s, display + " must not be empty");
    else if (problem)
        error(s, display + problem);
    else
        out = k.kind == Kind::path ? resolve(*value) : *value;
}

void Loader::read_choice(const Setting& s, const Key& k, const Slot& slot,
                         const std::string& display)
{
    auto text = string(s, display);
    if (!text)
        return;
    for (const schema::Named& n : k.choices) {
        if (n.name != *text)
            continue;
        Field f = k.field(slot);
        if (auto* name = std::get_if<std::string*>(&f))
            **name = *text;
        else
            *std::get<AccessFormat*>(f) = AccessFormat(n.value);
        if (k.derived)
            *k.derived(slot) = n.value;
        return;
    }
    std::string choices;
    for (const schema::Named& n : k.choices)
        choices += (choices.empty() ? "" : ", ") + std::string(n.name);
    error(s, display + " must be one of " + choices);
}

// The elements of a list or array of strings; an error if it is anything else.
std::optional<std::vector<const Setting*>> Loader::strings(const Setting& s,
                                                           const std::string& display)
{
    std::string message =
        display + " must be a list of strings: " + s.getName() + " = ( \"...\" );";
    if (!s.isList() && !s.isArray()) {
        error(s, message);
        return std::nullopt;
    }
    std::vector<const Setting*> items;
    for (int i = 0; i < s.getLength(); ++i) {
        if (s[i].getType() != Setting::TypeString) {
            error(s[i], message);
            return std::nullopt;
        }
        items.push_back(&s[i]);
    }
    return items;
}

void Loader::read_strings(const Setting& s, const Key& k, std::vector<std::string>& out,
                          const std::string& display)
{
    auto items = strings(s, display);
    if (!items)
        return;
    out.clear();
    for (const Setting* item : *items) {
        const char* problem = k.check ? k.check(item->c_str()) : nullptr;
        if (problem)
            error(*item, display + problem);
        else
            out.push_back(item->c_str());
    }
}

// --- the entry points -----------------------------------------------------------

namespace {

Config load_text(const std::string& text, const Origin& origin)
{
    Errors errors;
    std::vector<Tree> trees;
    auto main = parse_tree(text, origin, errors);
    if (!main)
        throw ConfigError(errors.messages());
    trees.push_back(std::move(*main));
    Config config = Loader(origin, errors, trees).run();
    if (!errors.empty())
        throw ConfigError(errors.messages());
    return config;
}

}  // namespace

Config load_file(const std::string& path)
{
    std::string failure;
    auto text = read_all(path, failure);
    if (!text)
        throw ConfigError({failure});
    return load_text(*text, origin_of_file(path));
}

Config load_checked(const std::string& dump_text, const std::string& file)
{
    // A dump has no include key, and no @include: strings are escaped onto
    // one line, and libconfig honours @include only at the start of a line.
    return load_text(dump_text, origin_of_file(file));
}

Config load_string(const std::string& text, const std::string& name, const std::string& base_dir)
{
    Origin origin;
    origin.name = name;
    origin.include_dir = base_dir.empty() ? "." : base_dir;
    origin.display_dir = base_dir.empty() || base_dir.back() == '/' ? base_dir : base_dir + "/";
    origin.base_dir = absolute_from(current_dir(), base_dir.empty() ? "." : base_dir);
    return load_text(text, origin);
}

}  // namespace preforkd::config
