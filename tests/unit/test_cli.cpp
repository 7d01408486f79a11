// Command-line parsing: each option, and the errors a user would make.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "preforkd/cli.hpp"

using preforkd::cli::parse;
using preforkd::cli::Result;

namespace {

Result run(std::vector<std::string> args)
{
    args.insert(args.begin(), "preforkd");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return parse(int(args.size()), argv.data());
}

}  // namespace

Test(cli, defaults_to_the_system_config_file)
{
    Result r = run({});
    cr_assert(r.error.empty());
    cr_assert_str_eq(r.options.config_file.c_str(), "/etc/preforkd/preforkd.conf");
    cr_assert(!r.options.foreground && !r.options.test && !r.options.dump);
}

Test(cli, short_options)
{
    Result r = run({"-f", "-c", "/tmp/x.conf", "-p", "/tmp/x.pid", "-t"});
    cr_assert(r.error.empty(), "%s", r.error.c_str());
    cr_assert(r.options.foreground);
    cr_assert(r.options.test);
    cr_assert_str_eq(r.options.config_file.c_str(), "/tmp/x.conf");
    cr_assert_str_eq(r.options.pid_file.c_str(), "/tmp/x.pid");
}

Test(cli, long_options)
{
    Result r = run({"--foreground", "--config=/a.conf", "--dump", "--pid-file", "/b.pid"});
    cr_assert(r.error.empty(), "%s", r.error.c_str());
    cr_assert(r.options.foreground && r.options.dump);
    cr_assert_str_eq(r.options.config_file.c_str(), "/a.conf");
    cr_assert_str_eq(r.options.pid_file.c_str(), "/b.pid");
}

Test(cli, combined_flags)
{
    Result r = run({"-ft"});
    cr_assert(r.error.empty());
    cr_assert(r.options.foreground && r.options.test);
}

Test(cli, version_and_help)
{
    cr_assert(run({"-V"}).options.version);
    cr_assert(run({"--version"}).options.version);
    cr_assert(run({"-h"}).options.help);
    cr_assert(run({"--help"}).options.help);
}

Test(cli, signal_words)
{
    for (const char* word : {"stop", "quit", "reload", "reopen", "upgrade"}) {
        Result r = run({"-s", word});
        cr_assert(r.error.empty(), "-s %s: %s", word, r.error.c_str());
        cr_assert_str_eq(r.options.signal_word.c_str(), word);
    }
}

Test(cli, unknown_signal_word_is_an_error)
{
    Result r = run({"-s", "restart"});
    cr_assert_str_eq(r.error.c_str(),
                     "unknown signal name \"restart\" (stop, quit, reload, reopen, upgrade, status)");
}

Test(cli, unknown_option_is_named)
{
    std::string short_error = run({"-x"}).error;
    std::string long_error = run({"--bogus"}).error;
    cr_assert_str_eq(short_error.c_str(), "unknown option: -x");
    cr_assert_str_eq(long_error.c_str(), "unknown option: --bogus");
}

Test(cli, missing_argument_is_named)
{
    std::string error = run({"-c"}).error;
    cr_assert_str_eq(error.c_str(), "option requires an argument: -c");
}

Test(cli, stray_argument_is_an_error)
{
    std::string error = run({"-f", "extra"}).error;
    cr_assert_str_eq(error.c_str(), "unexpected argument: extra");
}

Test(cli, usage_lists_every_option)
{
    std::string u = preforkd::cli::usage();
    for (const char* opt : {"--config", "--foreground", "--test", "--dump", "--signal",
                            "--pid-file", "--version", "--help"})
        cr_assert(u.find(opt) != std::string::npos, "usage lacks %s", opt);
}

Test(cli, status_takes_json_and_json_needs_status)
{
    Result r = run({"-s", "status", "--json"});
    cr_assert_str_empty(r.error.c_str());
    cr_assert(r.options.json);
    cr_assert_str_eq(r.options.signal_word.c_str(), "status");
    cr_assert(!run({"-s", "status"}).options.json);
    Result reload = run({"-s", "reload", "--json"});
    cr_assert_str_eq(reload.error.c_str(), "--json goes with -s status");
    Result alone = run({"--json"});
    cr_assert_str_eq(alone.error.c_str(), "--json goes with -s status");
}
