// test_config_helpers.hpp - what the configuration suites share: a
// temporary directory per test, files written into it, and the messages of
// a rejected load as one string, so a test compares what the administrator
// would read.
#pragma once

#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "preforkd/config.hpp"

namespace config_test {

inline std::string g_dir;   // this test's temporary directory, without symlinks

inline void make_dir()
{
    char tmpl[] = "/tmp/preforkd-config-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    g_dir = std::filesystem::canonical(tmpl).string();
}

inline void remove_dir()
{
    std::error_code ec;
    if (!g_dir.empty())
        std::filesystem::remove_all(g_dir, ec);
}

inline void write_file(const std::string& path, const std::string& text)
{
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

inline std::string joined(const std::vector<std::string>& lines)
{
    std::string text;
    for (const auto& line : lines)
        text += line + "\n";
    return text;
}

// Criterion's string assertions evaluate their arguments more than once: a
// temporary std::string's c_str() would be gone by the time it is printed.
inline void assert_text(const std::string& actual, const std::string& expected)
{
    cr_assert_str_eq(actual.c_str(), expected.c_str());
}

inline void assert_contains(const std::string& text, const std::string& part)
{
    cr_assert(text.find(part) != std::string::npos, "no \"%s\" in:\n%s", part.c_str(),
              text.c_str());
}

// The messages a rejected load reports, one per line ("" if it was accepted).
template <class Load> std::string errors_of(Load load)
{
    try {
        load();
    } catch (const preforkd::config::ConfigError& e) {
        return joined(e.messages());
    }
    return "";
}

inline std::string file_errors(const std::string& path)
{
    return errors_of([&] { preforkd::config::load_file(path); });
}

inline void assert_errors(const std::string& text, const std::vector<std::string>& expected)
{
    assert_text(errors_of([&] { preforkd::config::load_string(text, "t.conf", g_dir); }),
                joined(expected));
}

inline preforkd::config::Config load(const std::string& text)
{
    return preforkd::config::load_string(text, "t.conf", g_dir);
}

}  // namespace config_test
