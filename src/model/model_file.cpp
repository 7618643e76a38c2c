// SPDX-License-Identifier: Apache-2.0
// ModelFile: placeholder until the loader lands (owned by the model-file task).
