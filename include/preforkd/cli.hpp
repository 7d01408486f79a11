// cli.hpp - the command line (DESIGN.md section 3), parsed without side effects.
#pragma once

#include <string>

namespace preforkd::cli {

struct Options {
    std::string config_file;   // -c; default SYSCONFDIR/preforkd/preforkd.conf
    std::string pid_file;      // -p; overrides pid_file when not empty
    std::string signal_word;   // -s
    bool foreground = false;   // -f
    bool test = false;         // -t
    bool dump = false;         // -T
    bool version = false;      // -V
    bool help = false;         // -h
    bool json = false;         // --json, with -s status
};

struct Result {
    Options options;
    std::string error;         // empty when the command line is valid
};

// Parses argv with getopt_long.  An error names the offending argument.
Result parse(int argc, char* const argv[]);

std::string usage();

// The configuration file used when -c is not given.
std::string default_config_file();

}  // namespace preforkd::cli
