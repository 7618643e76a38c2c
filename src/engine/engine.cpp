// SPDX-License-Identifier: Apache-2.0
// Engine: the public face of EngineImpl.
#include "polyinfer/engine.hpp"

#include "engine/engine_impl.hpp"

namespace polyinfer {
inline namespace v0 {

Engine::Engine(EngineConfig config)
    : impl_(std::make_unique<detail::EngineImpl>(std::move(config))) {}
Engine::Engine(std::unique_ptr<detail::EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::future<Response> Engine::submit(Request request) {
  return impl_->submit(std::move(request), {});
}

std::future<Response> Engine::submit(Request request, StreamCallback on_token) {
  return impl_->submit(std::move(request), std::move(on_token));
}

void Engine::add_model(ModelSpec spec) {
  impl_->add_model(std::move(spec));
}

Metrics Engine::metrics() const {
  return impl_->metrics();
}

std::string Engine::metrics_prometheus() const {
  return impl_->metrics_prometheus();
}

}  // namespace v0
}  // namespace polyinfer
