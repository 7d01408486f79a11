// site_setup.hpp - the sites of a configuration, made ready for the workers.
//
// The configuration says what each site and location sets (config::Site,
// with every rule resolved); the HTTP layer answers from a compiled
// http::SiteTable.  Between the two sits what only the master can do, as
// root and before it forks: read every password file, open every site's own
// access log, and turn listen addresses into listener indexes.  A reload
// builds all of it beside the running state, so a bad password file or an
// unopenable log rejects the whole reload and changes nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "preforkd/access_log.hpp"
#include "preforkd/config.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/http/site.hpp"
#include "preforkd/tls/context.hpp"

namespace preforkd::site_setup {

// A site's own access log file, opened by the master.  Sink n (n >= 1) of
// the workers is logs[n - 1].
struct LogFile {
    Fd fd;
    std::string path;
    access_log::Format format = access_log::Format::combined;
};

struct Sites {
    std::optional<http::SiteTable> table;
    std::vector<LogFile> logs;
    // Every site's TLS context and the TLS listeners (tls/context.hpp);
    // shared with the workers forked for this generation.
    std::shared_ptr<const tls::Generation> tls;
};

// Builds the site table of `config` (config::effective_sites), with `mime`
// for every site (it must outlive the table).  Throws std::runtime_error
// naming every problem, one per line: a password file that cannot be read
// or holds refused entries (file:line and the fix), a site log that cannot
// be opened, a certificate or key tls::build() refuses, anything the table
// refuses.
Sites build(const config::Config& config, const http::MimeMap& mime);

// What -t adds for sites: every password file read and checked, every
// certificate and key checked (tls::check), and the table compiled, without
// opening any log.  One message per problem.
std::vector<std::string> check(const config::Config& config);

// Opens every site log of `sites` again (after logrotate), in sink order.
// Throws std::system_error naming the first file that cannot be opened.
std::vector<Fd> reopen(const Sites& sites);

}  // namespace preforkd::site_setup
