// Everything pincer-worker is told on its command line and environment,
// already validated by main.cc.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "client/address.h"
#include "protocol/peer_encode.h"
#include "worker/result_builder.h"

namespace asio::ssl {
class context;
}

namespace pincer::worker {

struct WorkerOptions {
  // --addr: one pincerd, or a leader and its standbys, tried in turn.
  std::vector<client::Address> addresses;
  WorkerHello hello;                        // token, name, skills, capacity, labels, spawn_id
  std::vector<std::string> command;         // argv of the per-task command
  std::size_t max_frame_bytes = 16u << 20;  // the daemon's limits.max_frame_bytes
  std::chrono::milliseconds handshake_timeout{10000};  // connect + welcome
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds kill_grace{2000};  // SIGTERM to SIGKILL
  // --tls-ca/--tls-cert/--tls-key, loaded once at start; null: plain TCP.
  std::shared_ptr<asio::ssl::context> tls;
  ResultPolicy result;  // --output, --permanent-exit-codes, --envelope
};

}  // namespace pincer::worker
