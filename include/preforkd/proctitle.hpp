// proctitle.hpp - what ps(1) shows for each process.
//
// Linux has no setproctitle(3): the title lives in the memory of argv, so the
// environment that follows it is moved to the heap first and the whole block
// is reused.
#pragma once

#include <string>

namespace preforkd::proctitle {

// Call once from main() before anything reads the environment.
void init(int argc, char** argv);

// The command line as it was given, joined by spaces.
const std::string& original();

void set(const std::string& title);

}  // namespace preforkd::proctitle
