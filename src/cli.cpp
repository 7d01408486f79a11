// cli.cpp - the command line, parsed into Options without acting on it.
#include "preforkd/cli.hpp"

#include <getopt.h>

#include "preforkd/signals.hpp"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

namespace preforkd::cli {
namespace {

constexpr option kLongOptions[] = {
    {"config", required_argument, nullptr, 'c'},
    {"foreground", no_argument, nullptr, 'f'},
    {"help", no_argument, nullptr, 'h'},
    {"pid-file", required_argument, nullptr, 'p'},
    {"signal", required_argument, nullptr, 's'},
    {"test", no_argument, nullptr, 't'},
    {"dump", no_argument, nullptr, 'T'},
    {"version", no_argument, nullptr, 'V'},
    {"json", no_argument, nullptr, 'j'},
    {nullptr, 0, nullptr, 0},
};

bool apply(int opt, Options& o, std::string& error)
{
    switch (opt) {
    case 'c': o.config_file = optarg; return true;
    case 'f': o.foreground = true; return true;
    case 'h': o.help = true; return true;
    case 'p': o.pid_file = optarg; return true;
    case 's': o.signal_word = optarg; return true;
    case 't': o.test = true; return true;
    case 'T': o.dump = true; return true;
    case 'V': o.version = true; return true;
    case 'j': o.json = true; return true;
    case ':': error = "option requires an argument"; return false;
    default: error = "unknown option"; return false;
    }
}

std::string check_signal(const std::string& word, bool json)
{
    if (json && word != "status")
        return "--json goes with -s status";
    if (word.empty() || word == "status")
        return "";
    if (signals::from_word(word) == 0)
        return "unknown signal name \"" + word + "\" (stop, quit, reload, reopen, upgrade, status)";
    return "";
}

}  // namespace

std::string default_config_file()
{
    return SYSCONFDIR "/preforkd/preforkd.conf";
}

Result parse(int argc, char* const argv[])
{
    Result r;
    r.options.config_file = default_config_file();
    optind = 0;   // 0 also resets glibc's internal state between calls
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:c:fhp:s:tTV", kLongOptions, nullptr)) != -1) {
        if (!apply(opt, r.options, r.error)) {
            std::string arg = optopt ? std::string("-") + char(optopt) : argv[optind - 1];
            r.error += ": " + arg;
            return r;
        }
    }
    if (optind < argc) {
        r.error = std::string("unexpected argument: ") + argv[optind];
        return r;
    }
    r.error = check_signal(r.options.signal_word, r.options.json);
    return r;
}

std::string usage()
{
    return "usage: preforkd [-fhtTV] [-c file] [-p pidfile] [-s signal] [--json]\n"
           "  -c, --config FILE     configuration file (default " SYSCONFDIR
           "/preforkd/preforkd.conf)\n"
           "  -f, --foreground      do not daemonize; diagnostics also go to stderr\n"
           "  -t, --test            check the configuration and exit\n"
           "  -T, --dump            check, then print the effective configuration\n"
           "  -s, --signal NAME     send stop, quit, reload, reopen or upgrade to the\n"
           "                        master, or ask it for its status\n"
           "      --json            with -s status: the status as JSON\n"
           "  -p, --pid-file FILE   override pid_file\n"
           "  -V, --version         print the version and exit\n"
           "  -h, --help            print this help and exit\n";
}

}  // namespace preforkd::cli
