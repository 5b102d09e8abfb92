// totem-keygen: writes a fresh random cluster key to a key file (format in
// totem/runtime/keyfile.cc), mode 0600, atomically.
//
//   totem-keygen PATH [--bytes N]     (N in [16, 4096], default 32)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "totem/node.h"

int main(int argc, char** argv) {
  std::string path;
  size_t bytes = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--bytes" && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0' || v == 0) {
        std::fprintf(stderr, "totem-keygen: --bytes needs a positive number, got '%s'\n", argv[i]);
        return 2;
      }
      bytes = v;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("usage: totem-keygen PATH [--bytes N]\n");
      return 0;
    } else if (!arg.empty() && arg[0] != '-' && path.empty()) {
      path = arg;
    } else {
      std::fprintf(stderr,
                   "totem-keygen: unexpected argument '%s'\nusage: totem-keygen PATH [--bytes N]\n",
                   arg.c_str());
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: totem-keygen PATH [--bytes N]\n");
    return 2;
  }
  totem::Status st = totem::WriteKeyFile(path, bytes);
  if (!st.ok()) {
    std::fprintf(stderr, "totem-keygen: %s\n", st.message().c_str());
    return 1;
  }
  std::printf("wrote a %zu-byte key to %s\n", bytes, path.c_str());
  return 0;
}
