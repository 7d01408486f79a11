// worker_context.hpp - what a generation of workers is forked from.
//
// Serving is the configuration in force and everything built from it that
// workers inherit: the identity to drop to, the site table and its MIME
// map, the access logs.  It is built whole, at start and by every reload,
// and switched as one value, so a generation never mixes two
// configurations.  worker_context() turns it, in a freshly forked child,
// into the worker::Context the worker runs on.
#pragma once

#include <cstdint>
#include <memory>

#include "preforkd/config.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/http/static_file.hpp"
#include "preforkd/listener_set.hpp"
#include "preforkd/parker.hpp"
#include "preforkd/privileges.hpp"
#include "preforkd/scoreboard.hpp"
#include "preforkd/site_setup.hpp"
#include "preforkd/worker.hpp"

namespace preforkd::master {

struct Serving {
    config::Config config;
    privileges::Identity identity;
    std::shared_ptr<const http::MimeMap> mime;   // its address is in `sites`
    site_setup::Sites sites;
    Fd access_log;
    std::int64_t loaded_at = 0;                  // Unix time it was loaded
};

// Resolves the identity, loads the MIME map, builds the sites and opens the
// access log of `config`.  Throws on the first failure; nothing is shared
// with any other Serving.
Serving build_serving(config::Config config);

// The connection settings of `config`.
connection::Settings settings_of(const config::Config& config);

// In the child forked for scoreboard slot `slot`: the worker's context.
// The child's copies of the master's descriptors that the worker needs are
// handed over to it; `channel` is the worker's end of its socketpair.
worker::Context worker_context(Serving& serving, ListenerSet& listeners, parker::Queues& queues,
                               scoreboard::Board* board, int slot, std::uint32_t generation,
                               Fd channel);

}  // namespace preforkd::master
