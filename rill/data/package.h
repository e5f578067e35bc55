// Getting data by package name (Debian, npm, or a Debian .deb unpacked without installing it)
// and the shell plumbing around it: commands run from absolute folders with their output in
// logs, failures name the command and show the log, and a data set that is not prepared gets
// the `rill data NAME` command that prepares it. Corpora (corpus.h) and the labelled sets and
// series (dataset.h) all go through here.
#pragma once
#include <functional>
#include <string>

namespace rill::data {

using LogFn = std::function<void(const std::string&)>;  // progress lines; none when empty

// Where a data set's bytes come from. Every command runs under /bin/sh after `cd` into
// package_work_dir(); extraction commands (kept by the callers) run there too.
struct PackageSource {
  // "debian": installed system-wide by apt-get (as root, or under passwordless sudo);
  // "debian-download": `apt-get download` + `dpkg-deb -x` into the data folder, so none of the
  //   package's dependencies come along (no root needed);
  // "npm": `npm pack` + tar into the data folder (none of its npm dependencies come along).
  std::string registry;
  std::string package;  // as the registry names it
  std::string install;  // fetches the package
  std::string present;  // exits 0 when it is already there
  std::string version;  // prints the package version
};

// Commands for PackageSource: install a Debian package without its recommends, print its
// installed version.
std::string apt_install_command(const std::string& package);
std::string dpkg_version_command(const std::string& package);

// The folder the commands of a data set prepared in `dir` (absolute) run in: dir/npm for npm,
// dir/deb for debian-download, dir itself for Debian packages (they install elsewhere).
std::string package_work_dir(const std::string& registry, const std::string& dir);

// Runs `present` in work_dir; when it fails, runs `install` (Debian: as root or under sudo;
// both Debian registries run `apt-get update` once and retry when the lists are stale; the log
// is work_dir/install.log) and checks `present` again. Errors name the data as "{kind} {name}"
// (e.g. "corpus brown"). Returns whether the install command ran.
bool ensure_installed(const PackageSource& source, const std::string& kind, const std::string& name,
                      const std::string& work_dir, const LogFn& log);

// The package version printed by source.version in work_dir, trimmed; "unknown" when it fails.
std::string package_version(const PackageSource& source, const std::string& work_dir);

// Runs `command` in `dir` under /bin/sh with stdout and stderr in `log`; returns the exit code.
// dir and log must be absolute (the command runs after a `cd`).
int run_logged(const std::string& command, const std::string& dir, const std::string& log);

// Runs `command` in `dir` and returns its stdout; stderr goes to `log`. Throws, naming `what`,
// the command and the log, when it exits with anything but 0.
std::string run_capture(const std::string& command, const std::string& dir, const std::string& log,
                        const std::string& what);

std::string shell_quote(const std::string& s);

// "run `rill data NAME` (it installs the Debian package P)", worded for the registry.
std::string prepare_hint(const std::string& name, const std::string& registry,
                         const std::string& package);

// The data folder as the user gave it, with one trailing slash ("./" when empty), for messages.
std::string dir_for_message(const std::string& data_dir);

}  // namespace rill::data
