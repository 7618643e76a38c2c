# SPDX-License-Identifier: Apache-2.0
# `polyinfer logits` and `polyinfer generate` on the Llama fixtures: outputs, exit statuses.
# Run by ctest as: cmake -DPOLYINFER=... -DSHARED_DIR=... -P llama.cmake
cmake_minimum_required(VERSION 3.22)

include(${CMAKE_CURRENT_LIST_DIR}/support/cli_support.cmake)

function(expect_contains text what)
  string(FIND "${text}" "${what}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "expected '${what}' in:\n${text}")
  endif()
endfunction()

set(scratch "${CMAKE_CURRENT_BINARY_DIR}/cli-llama")
file(MAKE_DIRECTORY ${scratch})

# Usage errors exit 2.
run(2 out err logits model --out ${scratch}/x.safetensors)
run(2 out err logits model --ids "1 2")
run(2 out err logits model --ids "" --out ${scratch}/x.safetensors)
run(2 out err logits model --ids "1 two" --out ${scratch}/x.safetensors)
run(2 out err logits model --ids "1 2" --out ${scratch}/x.safetensors --tier q5_1)
run(2 out err logits model --ids "1 2" --out ${scratch}/x.safetensors --device gpu)
run(2 out err generate model)
run(2 out err generate model --prompt hi --greedy --temperature 0.5)
run(2 out err generate model --prompt hi --top-p 1.5)
run(2 out err generate model --prompt hi --max-tokens -1)

# Other errors exit 1 with one line naming what failed.
run(1 out err logits ${scratch}/no-such-model.gguf --ids "1 2" --out ${scratch}/x.safetensors)
expect_one_line_error("${err}" "no-such-model.gguf")

set(fixtures "${SHARED_DIR}/fixtures")
set(taskmodels "${SHARED_DIR}/taskmodels")
if(NOT EXISTS "${fixtures}/models/tiny-llama/cases.json" OR NOT EXISTS "${taskmodels}/small")
  if(DEFINED ENV{CI})
    message(FATAL_ERROR "fixtures missing under CI: ${fixtures}, ${taskmodels}")
  endif()
  message(WARNING "fixtures missing, fixture checks not run: ${fixtures}, ${taskmodels}")
  return()
endif()
set(llama "${fixtures}/models/tiny-llama")

run(1 out err logits ${llama} --ids "1 512" --out ${scratch}/x.safetensors)
expect_one_line_error("${err}" "id 512 is out of range")
# cuda:7 exists on no machine CI or a developer uses: a clear error either way (no GPU there, or
# a build without the CUDA backend).
run(1 out err logits ${llama} --ids "1 2" --out ${scratch}/x.safetensors --device cuda:7)
if(err MATCHES "no CUDA backend")
  expect_one_line_error("${err}" "no CUDA backend")
else()
  expect_one_line_error("${err}" "no such GPU")
endif()
run(1 out err classify ${llama} --text "hello" --device cuda:0)
expect_one_line_error("${err}" "encoders run on the cpu")
run(1 out err logits ${llama}/gguf/tiny-llama-q4_0.gguf --ids "1 2" --out ${scratch}/x.safetensors
    --tier q8_0)
expect_one_line_error("${err}" "cannot be made from q4_0")
run(1 out err generate ${taskmodels}/small --prompt "add 1 2 =" --tier q4_k)
expect_one_line_error("${err}" "multiple of 256")
run(1 out err logits ${llama} --ids "1 2" --out ${scratch}/no-such-folder/x.safetensors)
expect_one_line_error("${err}" "no-such-folder")

# logits: a safetensors file with f32 "logits" [tokens, vocab].
foreach(model ${llama} ${llama}/gguf/tiny-llama-q4_k_m.gguf)
  run(0 out err logits ${model} --ids "1 329 274 422" --out ${scratch}/logits.safetensors --tier
      native --device cpu)
  file(SIZE ${scratch}/logits.safetensors size)
  file(READ ${scratch}/logits.safetensors header LIMIT 200 OFFSET 8)
  expect_contains("${header}" "\"logits\":{\"dtype\":\"F32\",\"shape\":[4,512]")
  math(EXPR data "4 * 512 * 4")
  if(size LESS data)
    message(FATAL_ERROR "logits file of ${size} bytes holds no 4 × 512 floats")
  endif()
endforeach()

# generate: dev.jsonl's greedy answers of the task models, plain and as JSON.
run(0 out err generate ${taskmodels}/small --prompt "add 318 552 =" --greedy)
if(NOT out STREQUAL "860\n")
  message(FATAL_ERROR "small 'add 318 552 =': got '${out}', expected '860\\n'")
endif()
run(0 out err generate ${taskmodels}/large --prompt "sort kugd =" --json --tier f32)
expect_contains("${out}" "\"text\":\"dgku\\n\"")
expect_contains("${out}" "\"stop_reason\":\"stop_token\"")
run(0 out err generate ${taskmodels}/medium --prompt "rev hello =" --temperature 0.7 --top-p 0.9
    --seed 5 --max-tokens 3 --json)
expect_contains("${out}" "\"gen_tokens\":3")
