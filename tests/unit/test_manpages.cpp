// The manual pages are the specification (STYLE.md habit 13): these tests
// keep them from drifting away from the code.  Every key the configuration
// loader accepts is an item of preforkd.conf(5), and every item there is a
// key the loader accepts; every option of the usage text and every signal of
// the master's signal table is an item of preforkd(8); and both pages pass
// `mandoc -Tlint -W warning`.
//
// The pages are read from the source tree: the current directory (the
// Makefile runs the unit tests from the top of the tree), or $PREFORKD_SRCDIR.
//
// The conventions checked here are written in the pages' own comments:
// a configuration key is the head of a tagged item with its dotted name,
// ".It Ic workers.start"; an option is an item ".It Fl c ... , Fl -config";
// a signal is an item ".It Dv SIGHUP" and its -s word an item ".It Cm reload".
#include <criterion/criterion.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "preforkd/cli.hpp"
#include "preforkd/config.hpp"
#include "preforkd/config/schema.hpp"
#include "preforkd/signals.hpp"

namespace {

std::string source_dir()
{
    const char* dir = std::getenv("PREFORKD_SRCDIR");
    return dir && *dir ? dir : ".";
}

std::string page_path(const std::string& name)
{
    return source_dir() + "/man/" + name;
}

std::string read_page(const std::string& name)
{
    std::string path = page_path(name);
    std::ifstream in(path);
    cr_assert(in.good(), "cannot read %s: run from the top of the source tree or set "
                         "PREFORKD_SRCDIR", path.c_str());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The whitespace-separated words of every line that starts with `macro`
// (".It"), the macro itself left out.
std::vector<std::vector<std::string>> items(const std::string& page, const std::string& macro)
{
    std::vector<std::vector<std::string>> found;
    std::istringstream lines(page);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string first;
        if (!(words >> first) || first != macro)
            continue;
        std::vector<std::string> rest;
        for (std::string w; words >> w;)
            rest.push_back(w);
        found.push_back(rest);
    }
    return found;
}

// True when some ".It" line holds `macro` directly followed by `word`.
bool has_item_word(const std::string& page, const std::string& macro, const std::string& word)
{
    for (const auto& words : items(page, ".It"))
        for (std::size_t i = 0; i + 1 < words.size(); ++i)
            if (words[i] == macro && words[i + 1] == word)
                return true;
    return false;
}

// The names of the ".It Ic name" items that look like configuration keys.
std::set<std::string> documented_keys(const std::string& page)
{
    static const std::regex key("[a-z_]+(\\.[a-z_]+)?");
    std::set<std::string> keys;
    for (const auto& words : items(page, ".It"))
        if (words.size() >= 2 && words[0] == "Ic" && std::regex_match(words[1], key))
            keys.insert(words[1]);
    return keys;
}

struct Option {
    char short_name;
    std::string long_name;
};

// The "-x, --long" pairs of the usage text.
std::vector<Option> usage_options()
{
    static const std::regex pair("^\\s*-([A-Za-z0-9]), --([a-z][a-z-]*)");
    std::vector<Option> options;
    std::istringstream lines(preforkd::cli::usage());
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_search(line, m, pair))
            options.push_back({m[1].str()[0], m[2].str()});
    }
    return options;
}

// An item ".It Fl x ..." that names the long form too, as "Fl -long"
// (or "Fl \-long").
bool documents_option(const std::string& page, const Option& o)
{
    std::string short_flag(1, o.short_name);
    for (const auto& words : items(page, ".It")) {
        if (words.size() < 2 || words[0] != "Fl" || words[1] != short_flag)
            continue;
        for (std::size_t i = 0; i + 1 < words.size(); ++i)
            if (words[i] == "Fl" &&
                (words[i + 1] == "-" + o.long_name || words[i + 1] == "\\-" + o.long_name))
                return true;
    }
    return false;
}

// True when the command line takes `-s word`: the signal table also holds
// words that -s might refuse (none today).
bool accepted_by_dash_s(const std::string& word)
{
    std::vector<std::string> args = {"preforkd", "-s", word};
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return preforkd::cli::parse(int(args.size()), argv.data()).error.empty();
}

std::string find_in_path(const std::string& program)
{
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return "";
}

// Runs mandoc's linter on one page; returns its exit status, `output` gets
// what it said.
int lint(const std::string& mandoc, const std::string& page, std::string& output)
{
    std::string command = "'" + mandoc + "' -Tlint -W warning '" + page_path(page) + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    cr_assert(pipe, "popen(%s) failed", command.c_str());
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        output.append(buf, n);
    int status = ::pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void assert_lint_clean(const std::string& page)
{
    std::string mandoc = find_in_path("mandoc");
    if (mandoc.empty())
        cr_skip_test("mandoc is not installed (apt-get install mandoc)");
    std::string output;
    int status = lint(mandoc, page, output);
    cr_assert_eq(status, 0, "mandoc -Tlint -W warning %s exited %d:\n%s", page.c_str(), status,
                 output.c_str());
}

// What the page says of one key: the value after "Default:" and the two
// numbers of "Range: A to B", mdoc macros, quotes and punctuation dropped
// ("" where it says something else, such as "not set").
struct Documented {
    std::string default_value;
    std::string range;   // "A to B"
};

std::string plain_word(std::istringstream& words)
{
    std::string w;
    while (words >> w && (w == ".Pa" || w == ".Qq" || w == ".Ql" || w == "\\&"))
        ;
    while (!w.empty() && (w.back() == ',' || w.back() == '.' || w.back() == ';'))
        w.pop_back();
    return w;
}

std::map<std::string, Documented> documented_values(const std::string& page)
{
    std::map<std::string, Documented> found;
    std::istringstream lines(page);
    std::string key, line, pending;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string first, second;
        words >> first >> second;
        if (first == ".It" && second == "Ic") {
            words >> key;
            continue;
        }
        if (key.empty() || (first != "Default:" && first != "Range:"))
            continue;
        std::string rest = line.substr(first.size());
        if (rest.find_first_not_of(' ') == std::string::npos && std::getline(lines, line))
            rest = line;
        std::istringstream values(rest);
        if (first == "Default:") {
            found[key].default_value = plain_word(values);
        } else {
            std::string lo = plain_word(values), to = plain_word(values), hi = plain_word(values);
            found[key].range = lo + " " + to + " " + hi;
        }
    }
    return found;
}

bool is_number(const std::string& s)
{
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

Test(manpages, known_keys_are_the_keys_the_loader_accepts)
{
    std::vector<std::string> keys = preforkd::config::known_keys();
    std::set<std::string> unique(keys.begin(), keys.end());
    cr_assert_eq(unique.size(), keys.size(), "known_keys() lists a key twice");
    for (const char* k : {"user", "listen", "workers.start", "http.root", "log.access_log"})
        cr_assert(unique.count(k), "known_keys() lacks %s", k);
    for (const char* group : {"workers", "http", "log"})
        cr_assert(!unique.count(group), "known_keys() lists the group %s as a key", group);
    // Each key, given a value of the wrong type (a group), must be refused
    // for its type, not as an unknown key.
    for (const std::string& key : keys) {
        auto dot = key.find('.');
        std::string group = dot == std::string::npos ? "" : key.substr(0, dot);
        std::string name = key.substr(dot + 1);
        std::string text = group.empty()          ? key + " = { };\n"
                           : group == "sites"     ? "sites = ( { " + name + " = { }; } );\n"
                           : group == "locations" ? "sites = ( { locations = ( { " + name +
                                                        " = { }; } ); } );\n"
                                                  : group + " = { " + name + " = { }; };\n";
        std::vector<std::string> messages;
        try {
            preforkd::config::load_string(text);
        } catch (const preforkd::config::ConfigError& e) {
            messages = e.messages();
        }
        cr_assert(!messages.empty(), "%s = { } was accepted", key.c_str());
        for (const std::string& m : messages)
            cr_assert(m.find("unknown key") == std::string::npos, "%s: %s", key.c_str(),
                      m.c_str());
    }
}

Test(manpages, conf_page_documents_every_key)
{
    std::string page = read_page("preforkd.conf.5");
    std::set<std::string> documented = documented_keys(page);
    for (const std::string& key : preforkd::config::known_keys())
        cr_expect(documented.count(key), "preforkd.conf.5 has no item \".It Ic %s\"", key.c_str());
}

// The page's defaults and ranges are the key table's: a default or a limit
// changed in the code and not on the page fails here.
Test(manpages, conf_page_defaults_and_ranges_are_the_key_tables)
{
    namespace schema = preforkd::config::schema;
    std::map<std::string, Documented> page = documented_values(read_page("preforkd.conf.5"));
    std::size_t compared = 0;
    for (const schema::Key& k : schema::keys()) {
        using K = schema::Kind;
        if (k.scope != schema::global || !(k.kind == K::integer || k.kind == K::boolean ||
                                           k.kind == K::choice || k.kind == K::path ||
                                           k.kind == K::string))
            continue;
        std::string name = schema::dotted(k.group, k.name);
        std::string expected = schema::default_text(k);
        if (expected.size() >= 2 && expected.front() == '"')
            expected = expected.substr(1, expected.size() - 2);
        if (expected.empty())
            continue;   // "not set", "empty": said in words
        const Documented& d = page[name];
        cr_expect_str_eq(d.default_value.c_str(), expected.c_str(),
                         "preforkd.conf.5 gives %s the default \"%s\", the code \"%s\"",
                         name.c_str(), d.default_value.c_str(), expected.c_str());
        ++compared;
        std::istringstream range(d.range);
        std::string lo, to, hi;
        range >> lo >> to >> hi;
        if (k.kind == K::integer && is_number(lo) && is_number(hi)) {
            std::string want = std::to_string(k.lo) + " to " + std::to_string(k.hi);
            cr_expect_str_eq(d.range.c_str(), want.c_str(), "preforkd.conf.5 gives %s the range "
                             "\"%s\", the code \"%s\"", name.c_str(), d.range.c_str(), want.c_str());
        }
    }
    cr_assert_geq(compared, 30u, "compared only %zu defaults", compared);
}

Test(manpages, conf_page_documents_only_known_keys)
{
    std::string page = read_page("preforkd.conf.5");
    std::vector<std::string> known = preforkd::config::known_keys();
    std::set<std::string> keys(known.begin(), known.end());
    for (const std::string& item : documented_keys(page))
        cr_expect(keys.count(item), "preforkd.conf.5 documents \"%s\", which the loader does "
                                    "not accept", item.c_str());
}

Test(manpages, daemon_page_documents_every_option)
{
    std::vector<Option> options = usage_options();
    cr_assert_geq(options.size(), 8u, "found only %zu \"-x, --long\" pairs in cli::usage()",
                  options.size());
    std::string page = read_page("preforkd.8");
    for (const Option& o : options)
        cr_expect(documents_option(page, o), "preforkd.8 has no item \".It Fl %c ... Fl -%s\"",
                  o.short_name, o.long_name.c_str());
}

Test(manpages, daemon_page_documents_every_signal)
{
    std::string page = read_page("preforkd.8");
    std::size_t count = 0;
    const preforkd::signals::Entry* table = preforkd::signals::table(count);
    cr_assert_gt(count, 0u);
    for (std::size_t i = 0; i < count; ++i) {
        const preforkd::signals::Entry& e = table[i];
        bool listed = false;
        for (const auto& words : items(page, ".It"))
            for (std::size_t w = 1; w < words.size() && !listed; ++w)
                listed = words[0] == "Dv" && words[w] == e.name;
        cr_expect(listed, "preforkd.8 has no \".It Dv %s\" item", e.name);
        if (e.word && accepted_by_dash_s(e.word))
            cr_expect(has_item_word(page, "Cm", e.word),
                      "preforkd.8 has no \".It Cm %s\" item for -s", e.word);
    }
}

Test(manpages, daemon_page_is_lint_clean)
{
    assert_lint_clean("preforkd.8");
}

Test(manpages, conf_page_is_lint_clean)
{
    assert_lint_clean("preforkd.conf.5");
}
