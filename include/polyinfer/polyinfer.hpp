// SPDX-License-Identifier: Apache-2.0
// Umbrella header: the whole public API of polyinfer.
#pragma once

#include "polyinfer/engine.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "polyinfer/model_writer.hpp"
#include "polyinfer/policy.hpp"
#include "polyinfer/tensor.hpp"
#include "polyinfer/tokenizer.hpp"
#include "polyinfer/version.hpp"
