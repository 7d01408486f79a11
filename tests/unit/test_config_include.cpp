// test_config_include.cpp - the `include` key: globs and absolute paths,
// files in byte order, sites appended, every other key set once, and each
// mistake (a directory, a missing or unreadable file, a syntax error in an
// included file) a "file:line" error, never a crash of the parser.
#include <criterion/criterion.h>

#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "preforkd/config.hpp"
#include "test_config_helpers.hpp"

using namespace preforkd::config;
using namespace config_test;

TestSuite(config_include, .init = make_dir, .fini = remove_dir, .timeout = 10);

namespace {

std::string site_file(const std::string& name)
{
    return "sites = ( { names = [ \"" + name + "\" ]; } );\n";
}

std::vector<std::string> first_names(const Config& c)
{
    std::vector<std::string> names;
    for (const Site& s : c.sites)
        names.push_back(s.names.empty() ? "" : s.names[0]);
    return names;
}

}  // namespace

Test(config_include, glob_appends_sites_in_byte_order)
{
    std::string main = g_dir + "/preforkd.conf";
    write_file(main, "include = [ \"sites-enabled/*.conf\", \"" + g_dir + "/extra.conf\" ];\n" +
                         site_file("main.test"));
    write_file(g_dir + "/sites-enabled/b.conf", site_file("b.test"));
    write_file(g_dir + "/sites-enabled/a.conf", site_file("a.test"));
    write_file(g_dir + "/sites-enabled/B.conf", site_file("upper-b.test"));
    write_file(g_dir + "/sites-enabled/a.conf.off", site_file("off.test"));
    write_file(g_dir + "/extra.conf", "workers = { max = 3; };\n" + site_file("extra.test"));
    Config c = load_file(main);
    cr_assert(first_names(c) == (std::vector<std::string>{"main.test", "upper-b.test", "a.test",
                                                         "b.test", "extra.test"}));
    cr_assert_eq(c.workers.max, 3, "an included file may set a key the main file does not");
    std::string text = dump(c);
    cr_assert(text.find("include") == std::string::npos, "the dump has its includes merged");
    Config again = load_checked(text, main);
    cr_assert(again == c);
}

Test(config_include, a_glob_matching_nothing_is_fine_a_missing_file_is_not)
{
    assert_errors("include = [ \"nowhere/*.conf\" ];\n", {});
    assert_errors("user = \"www\";\ninclude = [\n  \"missing.conf\" ];\n",
                  {"t.conf:3: include \"missing.conf\": \"" + g_dir +
                   "/missing.conf\": No such file or directory"});
}

// libconfig 1.5 calls exit(2) on a directory; this test would crash, not
// fail, if one reached it.
Test(config_include, a_directory_or_a_special_file_is_an_error_at_its_line)
{
    std::filesystem::create_directories(g_dir + "/conf.d/dir.conf");
    write_file(g_dir + "/conf.d/ok.conf", site_file("ok.test"));
    cr_assert_eq(mkfifo((g_dir + "/fifo.conf").c_str(), 0600), 0);
    assert_errors("include = [\n  \"conf.d/*.conf\",\n  \"fifo.conf\" ];\n",
                  {"t.conf:2: include \"conf.d/*.conf\": \"" + g_dir +
                       "/conf.d/dir.conf\" is a directory",
                   "t.conf:3: include \"fifo.conf\": \"" + g_dir +
                       "/fifo.conf\" is not a regular file"});
}

Test(config_include, an_unreadable_file_is_an_error_at_its_line)
{
    if (geteuid() == 0)
        cr_skip_test("root reads a file of mode 0000");
    write_file(g_dir + "/secret.conf", site_file("s.test"));
    cr_assert_eq(chmod((g_dir + "/secret.conf").c_str(), 0), 0);
    assert_errors("include = [ \"secret.conf\" ];\n",
                  {"t.conf:1: include \"secret.conf\": open(\"" + g_dir +
                   "/secret.conf\") failed: Permission denied"});
}

Test(config_include, errors_in_an_included_file_name_that_file)
{
    write_file(g_dir + "/sites/a.conf", "sites = ( {\n  names = [ \"a.test\" ];\n  rot = \"/x\"; } );\n");
    write_file(g_dir + "/sites/b.conf", "sites = (\n  { names = ; } );\n");
    write_file(g_dir + "/sites/c.conf", "\n\nsites = ( { names = [ \"A.test\" ]; } );\n");
    assert_errors("include = [ \"sites/*.conf\" ];\n",
                  {g_dir + "/sites/a.conf:3: unknown key 'sites.rot' (did you mean 'sites.root'?)",
                   g_dir + "/sites/b.conf:2: syntax error",
                   g_dir + "/sites/c.conf:3: sites.names: \"a.test\" is already a name of the "
                           "site at " + g_dir + "/sites/a.conf:2"});
}

Test(config_include, other_keys_are_set_in_one_file_only)
{
    write_file(g_dir + "/a.conf", "\nworkers = { max = 3; };\ninclude = [ \"b.conf\" ];\n");
    write_file(g_dir + "/b.conf", site_file("b.test"));
    assert_errors("workers = { max = 4; };\ninclude = [ \"a.conf\" ];\n",
                  {g_dir + "/a.conf:2: workers is already set in t.conf; only sites may be "
                           "added by an included file",
                   g_dir + "/a.conf:3: include is read in the main configuration file only"});
}

Test(config_include, at_include_of_a_directory_inside_an_included_file_is_caught)
{
    std::filesystem::create_directories(g_dir + "/inc/sub");
    write_file(g_dir + "/inc/a.conf", "@include \"sub\"\n");
    assert_errors("include = [ \"inc/a.conf\" ];\n",
                  {g_dir + "/inc/a.conf:1: @include \"sub\": Is a directory"});
}

Test(config_include, a_file_is_read_once_and_never_the_main_file_again)
{
    std::string main = g_dir + "/preforkd.conf";
    write_file(main, "include = [\n  \"sites/a.conf\", \"sites/*.conf\" ];\n");
    write_file(g_dir + "/sites/a.conf", site_file("a.test"));
    Config c = load_file(main);
    cr_assert(first_names(c) == std::vector<std::string>{"a.test"});
    write_file(main, "include = [\n  \"*.conf\" ];\n");
    assert_text(file_errors(main),
                main + ":2: include \"*.conf\" names this configuration file itself\n");
}
