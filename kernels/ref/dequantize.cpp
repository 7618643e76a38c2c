// SPDX-License-Identifier: Apache-2.0
// placeholder until the format task lands.
